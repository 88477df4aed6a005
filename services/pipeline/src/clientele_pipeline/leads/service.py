"""Lead operations: each one a unit of work (transaction, audit entry, version, events)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, cast

from clientele_shared.auth.access import ensure_visible, writable_directions
from clientele_shared.auth.principal import Principal
from clientele_shared.http.concurrency import check_version
from clientele_shared.http.problems import Conflict, NotFound, invalid, invalid_field
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import (
    AuditEntry,
    UnitOfWork,
    Versioned,
    audit_trail,
    write_version_row,
)
from pydantic import ValidationError
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_pipeline import publishing
from clientele_pipeline.clients import service as clients
from clientele_pipeline.deals import service as deals
from clientele_pipeline.deals.rules import DealDraft
from clientele_pipeline.leads import queries
from clientele_pipeline.leads.rules import (
    Assignment,
    Conversion,
    Lead,
    LeadIntake,
    Rejection,
    deal_source,
    deal_title,
    lead_of_row,
    turn_of,
)
from clientele_pipeline.pipelines import service as pipelines
from clientele_pipeline.settings import PipelineSettings
from clientele_pipeline.tables import audit_log, leads

KIND = "lead"
LEAD = Versioned(leads, KIND)
_NOT_FOUND = "The lead does not exist."


def _repeat_window(runtime: ServiceRuntime) -> timedelta:
    return timedelta(hours=cast(PipelineSettings, runtime.settings).lead_repeat_hours)


def _direction(principal: Principal, requested: str | None) -> str:
    """The lead's direction: the one asked for, else the caller's only one (422); one the
    caller may write in (403)."""
    if requested is None:
        if len(principal.directions) != 1:
            raise invalid_field("direction", "required: the caller has not exactly one direction")
        requested = next(iter(principal.directions))
    writable_directions(principal, [requested])
    return requested


async def receive(
    *, runtime: ServiceRuntime, principal: Principal, intake: LeadIntake
) -> tuple[Lead, bool]:
    """Take a request in: the lead its ``(source, external_id)`` was taken for already in the
    direction, by a first request or a repeat (False); a repeat of the direction's open lead
    from the same e-mail or phone within the window (False); otherwise a new lead, assigned at
    once to the direction's next sales employee in turn (True)."""
    if intake.email is None and intake.phone is None and intake.message is None:
        raise invalid_field("email", "a lead needs an e-mail, a phone or a message")
    direction = _direction(principal, intake.direction)
    async with pipelines.work(runtime, principal) as uow:
        session = uow.session
        contacts = [c for c in (intake.email, intake.phone) if c is not None]
        await queries.serialize_contacts(session, direction, contacts)
        if intake.external_id is not None:
            taken = await queries.lead_of_external_id(
                session, direction, intake.source, intake.external_id
            )
            if taken is not None:
                return taken, False
        now = await queries.now(session)
        repeated = await queries.open_lead_of(
            session,
            direction,
            email=intake.email,
            phone=intake.phone,
            since=now - _repeat_window(runtime),
        )
        lead_id = repeated.id if repeated is not None else uuid.uuid4()
        if intake.external_id is not None:
            owner = await queries.claim_external_id(
                session, direction, intake.source, intake.external_id, lead_id
            )
            if owner != lead_id:  # the same id was taken meanwhile (a contact-less request)
                taken = await queries.load(session, owner)
                assert taken is not None
                return taken, False
        if repeated is not None:
            return await _repeat(uow, repeated, intake, now), False
        return await _create(uow, principal, intake, direction, lead_id), True


async def _repeat(uow: UnitOfWork, current: Lead, intake: LeadIntake, now: datetime) -> Lead:
    """The request recorded on the open lead it repeats: a new version counting it, its
    message, an audit entry (the lead's history) and ``lead.received`` again."""
    values: dict[str, Any] = {
        "repeats": current.repeats + 1,
        "last_message": intake.message,
        "last_received_at": now,
    }
    for name in ("contact_name", "email", "phone", "company_name", "inn"):
        if getattr(current, name) is None and getattr(intake, name) is not None:
            values[name] = getattr(intake, name)
    changes = {
        name: {"old": _json(getattr(current, name)), "new": _json(value)}
        for name, value in values.items()
    }
    new = current.model_copy(update={**values, "version": current.version + 1})
    row = await write_version_row(
        uow,
        LEAD,
        current.id,
        current=current.version,
        expected={current.version},
        values=values,
        action="repeated",
        changes=changes,
        note=f"{intake.source}: {intake.message}" if intake.message else intake.source,
        events=[publishing.lead_received(uow.outbox, new, uow.actor)],
    )
    return lead_of_row(row)


async def _create(
    uow: UnitOfWork, principal: Principal, intake: LeadIntake, direction: str, lead_id: uuid.UUID
) -> Lead:
    """A new lead: the organization of its INN the direction sees suggested, handed to the next
    sales employee in turn (none: unassigned)."""
    session = uow.session
    suggested = (
        await queries.organization_by_inn(session, direction, intake.inn)
        if intake.inn is not None
        else None
    )
    lead = await queries.insert_lead(
        session,
        {
            **intake.model_dump(exclude={"direction"}),
            "id": lead_id,
            "directions": [direction],
            "status": "new",
            "suggested_organization_id": suggested,
            "version": 1,
            "created_by": principal.subject,
            "updated_by": principal.subject,
        },
    )
    staff = await queries.sales_staff(session, direction)
    events = []
    if staff:
        assignee = turn_of(staff, await queries.next_turn(session, direction))
        row = (
            (
                await session.execute(
                    update(leads)
                    .where(leads.c.id == lead_id)
                    .values(
                        assignee_employee_id=assignee,
                        status="assigned",
                        assigned_at=lead.created_at,
                    )
                    .returning(leads)
                )
            )
            .mappings()
            .one()
        )
        lead = lead_of_row(row)
        events += [
            publishing.lead_assigned(uow.outbox, lead, None, True, uow.actor),
            publishing.lead_assigned_notice(uow.outbox, lead, uow.actor),
        ]
    created = {
        name: {"old": None, "new": value}
        for name, value in lead.model_dump(
            mode="json",
            include={
                "direction",
                "source",
                "external_id",
                "status",
                "contact_name",
                "email",
                "phone",
                "company_name",
                "inn",
                "message",
                "details",
                "suggested_organization_id",
                "assignee_employee_id",
            },
        ).items()
        if value not in (None, {})
    }
    await uow.audit(kind=KIND, entity_id=lead_id, action="created", version=1, changes=created)
    uow.stage(publishing.lead_received(uow.outbox, lead, uow.actor), *events)
    return lead


def _json(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


async def visible_lead(
    session: AsyncSession, principal: Principal, lead_id: uuid.UUID, *, lock: bool = False
) -> Lead:
    """The lead if the caller may see it (404 otherwise)."""
    lead = await queries.load(session, lead_id, lock=lock)
    if lead is None:
        raise NotFound(_NOT_FOUND)
    ensure_visible(principal, lead.directions, _NOT_FOUND)
    return lead


async def _open_lead(
    uow: UnitOfWork, principal: Principal, lead_id: uuid.UUID, expected: set[int]
) -> Lead:
    """The lead locked for a change: visible (404), writable (403), the version expected
    (412), still open (409)."""
    lead = await visible_lead(uow.session, principal, lead_id, lock=True)
    writable_directions(principal, lead.directions)
    check_version(expected, lead.version)
    if not lead.open:
        raise Conflict(f"The lead is {lead.status}.", kind="lead-closed", lead_status=lead.status)
    return lead


async def _write(
    uow: UnitOfWork,
    current: Lead,
    values: dict[str, Any],
    action: str,
    note: str | None,
    event: Any,
) -> Lead:
    changes = {
        name: {"old": _json(getattr(current, name)), "new": _json(value)}
        for name, value in values.items()
        if name in Lead.model_fields and _json(getattr(current, name)) != _json(value)
    }
    row = await write_version_row(
        uow,
        LEAD,
        current.id,
        current=current.version,
        expected={current.version},
        values=values,
        action=action,
        changes=changes,
        note=note,
        events=[event],
    )
    return lead_of_row(row)


async def assign_lead(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    lead_id: uuid.UUID,
    assignment: Assignment,
    expected: set[int],
) -> Lead:
    """Hand an open lead to an active employee of its direction (422 otherwise)."""
    async with pipelines.work(runtime, principal) as uow:
        current = await _open_lead(uow, principal, lead_id, expected)
        employee = await clients.employee(uow.session, assignment.employee_id)
        if employee is None or not employee.active:
            raise invalid_field("employee_id", "no such active employee", "unknown_reference")
        if current.direction not in employee.directions:
            raise invalid_field(
                "employee_id",
                "the employee does not work in the lead's direction",
                "direction_mismatch",
            )
        now = await queries.now(uow.session)
        values = {
            "assignee_employee_id": assignment.employee_id,
            "status": "assigned",
            "assigned_at": now,
        }
        new = current.model_copy(update={**values, "version": current.version + 1})
        event = publishing.lead_assigned(
            uow.outbox, new, current.assignee_employee_id, False, uow.actor
        )
        uow.stage(publishing.lead_assigned_notice(uow.outbox, new, uow.actor))
        return await _write(uow, current, values, "assigned", None, event)


async def convert_lead(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    lead_id: uuid.UUID,
    conversion: Conversion,
    expected: set[int],
) -> Lead:
    """An open lead becomes a deal with a client of the directory, made by the deals' own
    operation in this transaction (its checks, audit entry and events)."""
    async with pipelines.work(runtime, principal) as uow:
        session = uow.session
        current = await _open_lead(uow, principal, lead_id, expected)
        pipeline_id = conversion.pipeline_id or await queries.default_pipeline(
            session, current.direction
        )
        if pipeline_id is None:
            raise invalid_field("pipeline_id", "the lead's direction has no pipeline")
        responsible = None
        if current.assignee_employee_id is not None:
            employee = await clients.employee(session, current.assignee_employee_id)
            if (
                employee is not None
                and employee.active
                and current.direction in employee.directions
            ):
                responsible = employee.employee_id
        try:
            draft = DealDraft.model_validate(
                {
                    "pipeline_id": pipeline_id,
                    "stage_id": conversion.stage_id,
                    "organization_id": conversion.organization_id,
                    "title": deal_title(current, conversion),
                    "amount": conversion.amount,
                    "currency": conversion.currency,
                    "directions": [current.direction],
                    "responsible_employee_id": responsible,
                    "source": deal_source(current),
                }
            )
        except ValidationError as exc:
            raise invalid([dict(error) for error in exc.errors(include_url=False)]) from None
        deal = await deals.create_in(uow, principal, draft, uuid.uuid4())
        values = {"status": "converted", "deal_id": deal.id}
        new = current.model_copy(update={**values, "version": current.version + 1})
        event = publishing.lead_converted(uow.outbox, new, conversion.organization_id, uow.actor)
        return await _write(uow, current, values, "converted", None, event)


async def reject_lead(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    lead_id: uuid.UUID,
    rejection: Rejection,
    expected: set[int],
) -> Lead:
    async with pipelines.work(runtime, principal) as uow:
        current = await _open_lead(uow, principal, lead_id, expected)
        values = {
            "status": "rejected",
            "reject_reason": rejection.reason,
            "reject_comment": rejection.comment,
        }
        new = current.model_copy(update={**values, "version": current.version + 1})
        event = publishing.lead_rejected(uow.outbox, new, uow.actor)
        return await _write(uow, current, values, "rejected", rejection.comment, event)


async def get_lead(*, runtime: ServiceRuntime, principal: Principal, lead_id: uuid.UUID) -> Lead:
    async with runtime.sessions() as session:
        return await visible_lead(session, principal, lead_id)


async def list_leads(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    status: str | None,
    assignee_employee_id: uuid.UUID | None,
    unassigned: bool,
    direction: str | None,
    source: str | None,
    before: datetime | None,
    before_id: uuid.UUID | None,
    limit: int,
) -> list[Lead]:
    async with runtime.sessions() as session:
        return await queries.list_visible(
            session,
            principal,
            status=status,
            assignee_employee_id=assignee_employee_id,
            unassigned=unassigned,
            direction=direction,
            source=source,
            before=before,
            before_id=before_id,
            limit=limit,
        )


async def lead_audit(
    *, runtime: ServiceRuntime, principal: Principal, lead_id: uuid.UUID, after: int, limit: int
) -> list[AuditEntry]:
    async with runtime.sessions() as session:
        await visible_lead(session, principal, lead_id)
        return await audit_trail(session, audit_log, KIND, lead_id, after=after, limit=limit)
