"""Marketing event operations: each one a unit of work (transaction, audit entry, version,
events)."""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

from clientele_shared.auth.access import ensure_visible, writable_directions
from clientele_shared.auth.principal import Principal
from clientele_shared.events.envelope import Envelope
from clientele_shared.http.concurrency import check_version
from clientele_shared.http.problems import Conflict, NotFound, invalid, invalid_field
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import (
    AuditEntry,
    UnitOfWork,
    Versioned,
    audit_trail,
    field_changes,
    restore,
    soft_delete_values,
    unit_of_work,
    write_version,
)
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_campaigns import publishing
from clientele_campaigns.campaigns import queries
from clientele_campaigns.campaigns.rules import (
    Campaign,
    CampaignDraft,
    CampaignFields,
    CampaignPatch,
    json_fields,
    patched,
    status_allowed,
)
from clientele_campaigns.clients.service import READ_MODELS
from clientele_campaigns.kinds.service import usable_kind
from clientele_campaigns.tables import audit_log, campaigns

KIND = "campaign"
CAMPAIGN = Versioned(campaigns, KIND)
_NOT_FOUND = "The marketing event does not exist."


def work(runtime: ServiceRuntime, principal: Principal) -> AbstractAsyncContextManager[UnitOfWork]:
    """A unit of work of the campaigns service on behalf of ``principal``."""
    return unit_of_work(runtime.sessions, runtime.outbox, audit_log, principal)


async def visible_campaign(
    session: AsyncSession,
    principal: Principal,
    campaign_id: uuid.UUID,
    *,
    lock: bool = False,
    deleted: bool | None = False,
) -> Campaign:
    """The marketing event if the caller may see it (404 otherwise); ``deleted`` None: either."""
    campaign = await queries.load(session, campaign_id, lock=lock)
    if campaign is None or (deleted is not None and (campaign.deleted_at is not None) != deleted):
        raise NotFound(_NOT_FOUND)
    ensure_visible(principal, campaign.directions, _NOT_FOUND)
    return campaign


async def locked_campaign(
    uow: UnitOfWork, principal: Principal, campaign_id: uuid.UUID, *, deleted: bool | None = False
) -> Campaign:
    """The marketing event locked for a change the caller may make (404 unseen, 403 when not
    all its directions are the caller's)."""
    campaign = await visible_campaign(
        uow.session, principal, campaign_id, lock=True, deleted=deleted
    )
    writable_directions(principal, campaign.directions)
    return campaign


async def new_version(
    uow: UnitOfWork,
    campaign: Campaign,
    expected: set[int],
    *,
    action: str,
    changes: dict[str, Any],
    values: dict[str, Any] | None = None,
    events: list[Envelope] | None = None,
) -> Campaign:
    """Write the marketing event's next version (its budget and stages are part of it)."""
    await write_version(
        uow,
        CAMPAIGN,
        campaign.id,
        current=campaign.version,
        expected=expected,
        values=values or {},
        action=action,
        changes=changes,
        events=events or (),
    )
    changed = await queries.load(uow.session, campaign.id)
    assert changed is not None
    return changed


async def _check_responsible(session: AsyncSession, fields: CampaignFields) -> None:
    """The responsible employee known, active and working in one of the event's directions."""
    employee_id = fields.responsible_employee_id
    if employee_id is None:
        return
    employee = await READ_MODELS.employee(session, employee_id)
    if employee is None or not employee.active:
        raise invalid_field(
            "responsible_employee_id", "no such active employee", "unknown_reference"
        )
    if set(employee.directions).isdisjoint(fields.directions):
        raise invalid_field(
            "responsible_employee_id",
            "the employee does not work in the event's directions",
            "direction_mismatch",
        )


async def create_campaign(
    *, runtime: ServiceRuntime, principal: Principal, draft: CampaignDraft
) -> Campaign:
    """A marketing event in directions the caller works in (403 outside them), with its stages."""
    writable_directions(principal, draft.directions)
    campaign_id = uuid.uuid4()
    fields = CampaignFields.model_validate(draft.model_dump(exclude={"stages"}))
    async with work(runtime, principal) as uow:
        await usable_kind(uow.session, fields.kind)
        await _check_responsible(uow.session, fields)
        await queries.insert_campaign(
            uow.session,
            {
                **fields.model_dump(),
                "id": campaign_id,
                "version": 1,
                "created_by": principal.subject,
                "updated_by": principal.subject,
            },
            draft.stages,
        )
        campaign = await queries.load(uow.session, campaign_id)
        assert campaign is not None
        created = {**json_fields(fields), "stages": [stage.name for stage in campaign.stages]}
        await uow.audit(
            kind=KIND,
            entity_id=campaign_id,
            action="created",
            version=1,
            changes={key: {"old": None, "new": value} for key, value in created.items()},
        )
        uow.stage(publishing.campaign_created(uow.outbox, campaign, uow.actor))
    return campaign


async def list_campaigns(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    deleted: bool,
    status: str | None,
    starts_from: datetime | None,
    starts_before: datetime | None,
    limit: int,
) -> list[Campaign]:
    async with runtime.sessions() as session:
        return await queries.list_visible(
            session,
            principal,
            deleted=deleted,
            status=status,
            starts_from=starts_from,
            starts_before=starts_before,
            limit=limit,
        )


async def get_campaign(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    campaign_id: uuid.UUID,
    include_deleted: bool = False,
) -> Campaign:
    async with runtime.sessions() as session:
        return await visible_campaign(
            session, principal, campaign_id, deleted=None if include_deleted else False
        )


async def campaign_audit(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    campaign_id: uuid.UUID,
    after: int,
    limit: int,
) -> list[AuditEntry]:
    async with runtime.sessions() as session:
        await visible_campaign(session, principal, campaign_id, deleted=None)
        return await audit_trail(session, audit_log, KIND, campaign_id, after=after, limit=limit)


async def update_campaign(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    campaign_id: uuid.UUID,
    patch: CampaignPatch,
    expected: set[int],
) -> Campaign:
    """Change fields (no change: no version); the status moves only along ``TRANSITIONS``."""
    async with work(runtime, principal) as uow:
        current = await locked_campaign(uow, principal, campaign_id)
        old = current.fields()
        try:
            new = patched(old, patch)
        except ValidationError as exc:
            raise invalid([dict(error) for error in exc.errors(include_url=False)]) from None
        changes = field_changes(json_fields(old), json_fields(new))
        if not changes:
            check_version(expected, current.version)
            return current
        check_version(expected, current.version)
        if not status_allowed(old.status, new.status):
            raise Conflict(
                f"A marketing event does not go from {old.status} to {new.status}.",
                kind="status-transition",
            )
        writable_directions(principal, new.directions)
        if "kind" in changes:
            await usable_kind(uow.session, new.kind)
        if {"responsible_employee_id", "directions"} & changes.keys():
            await _check_responsible(uow.session, new)
        after = current.model_copy(update={**new.model_dump(), "version": current.version + 1})
        event = publishing.campaign_changed(
            uow.outbox, after, changes, uow.actor, previous_directions=current.directions
        )
        return await new_version(
            uow,
            current,
            expected,
            action="updated",
            changes=changes,
            values=new.model_dump(),
            events=[event],
        )


async def delete_campaign(
    *, runtime: ServiceRuntime, principal: Principal, campaign_id: uuid.UUID, expected: set[int]
) -> int:
    """Soft-delete a marketing event (restorable); the new version."""
    async with work(runtime, principal) as uow:
        current = await locked_campaign(uow, principal, campaign_id)
        version = current.version + 1
        event = publishing.campaign_deleted(uow.outbox, current, version, uow.actor)
        deleted = await new_version(
            uow,
            current,
            expected,
            action="deleted",
            changes={},
            values=soft_delete_values(principal.subject),
            events=[event],
        )
        return deleted.version


async def restore_campaign(
    *, runtime: ServiceRuntime, principal: Principal, campaign_id: uuid.UUID, expected: set[int]
) -> Campaign:
    async with work(runtime, principal) as uow:
        current = await locked_campaign(uow, principal, campaign_id, deleted=None)
        await restore(uow, CAMPAIGN, current, expected, what="marketing event")
        restored = await queries.load(uow.session, campaign_id)
        assert restored is not None
        uow.stage(publishing.campaign_restored(uow.outbox, restored, uow.actor))
        return restored


async def campaign_of(session: AsyncSession, campaign_id: uuid.UUID) -> Campaign | None:
    """A live marketing event whoever asks (a mailing's worker fills in the event's fields)."""
    campaign = await queries.load(session, campaign_id)
    return None if campaign is None or campaign.deleted_at is not None else campaign
