"""Task operations: each one a unit of work (transaction, audit entry, version, events), the
overdue scan, the hand-over of a client's tasks, and the secret calendar feed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from clientele_shared.auth.access import ensure_visible, writable_directions
from clientele_shared.auth.principal import Principal, Role
from clientele_shared.calendar_feeds import new_token, parse_token, secret_matches
from clientele_shared.directory_read_models import OrganizationRecord
from clientele_shared.events.envelope import Actor
from clientele_shared.events.outbox import Outbox
from clientele_shared.events.schemas.interactions import ResponsibilityHandedOver
from clientele_shared.http.concurrency import check_version
from clientele_shared.http.problems import Conflict, NotFound, invalid, invalid_field
from clientele_shared.observability import get_logger
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import (
    AuditEntry,
    UnitOfWork,
    Versioned,
    audit_trail,
    unit_of_work,
    write_version,
)
from clientele_shared.settings import ServiceSettings
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clientele_pipeline import publishing
from clientele_pipeline.clients import service as clients
from clientele_pipeline.deals import service as deals
from clientele_pipeline.deals.rules import Deal
from clientele_pipeline.pipelines import service as pipelines
from clientele_pipeline.settings import PipelineSettings
from clientele_pipeline.tables import audit_log, tasks
from clientele_pipeline.tasks import queries
from clientele_pipeline.tasks.rules import (
    Completion,
    Reassignment,
    Task,
    TaskDraft,
    TaskPatch,
    changes_between,
    patched_fields,
    tasks_calendar,
)

KIND = "task"
TASK = Versioned(tasks, KIND)
DEFAULT_LEAD = timedelta(minutes=15)
SERVICE_ACTOR = Actor(subject="pipeline", kind="service")
_NOT_FOUND = "The task does not exist."
NO_EMPLOYEE = "No such employee."
NO_FEED = "No such calendar feed."
log = get_logger(__name__)


def _settings(runtime: ServiceRuntime) -> PipelineSettings:
    return cast(PipelineSettings, runtime.settings)


def lead_of(settings: ServiceSettings) -> timedelta:
    """How long before a deadline the assignee is reminded."""
    if not isinstance(settings, PipelineSettings):
        return DEFAULT_LEAD
    return timedelta(minutes=settings.task_reminder_lead_minutes)


def reminder_lead(runtime: ServiceRuntime | None) -> timedelta:
    return DEFAULT_LEAD if runtime is None else lead_of(runtime.settings)


async def visible_task(
    session: AsyncSession, principal: Principal, task_id: uuid.UUID, *, lock: bool = False
) -> Task:
    """The live task if the caller may see it (404 otherwise)."""
    task = await queries.load(session, task_id, lock=lock)
    if task is None or task.deleted_at is not None:
        raise NotFound(_NOT_FOUND)
    ensure_visible(principal, task.directions, _NOT_FOUND)
    return task


async def _locked(uow: UnitOfWork, principal: Principal, task_id: uuid.UUID) -> Task:
    """The task locked for a change the caller may make (403 outside its directions), open."""
    task = await visible_task(uow.session, principal, task_id, lock=True)
    writable_directions(principal, task.directions)
    return task


def _directions(
    principal: Principal,
    requested: list[str] | None,
    deal: Deal | None,
    client: OrganizationRecord | None,
) -> list[str]:
    """The task's directions: those asked for (within the deal's), else the caller's among the
    deal's or the client's (all of them for admins and services), else the caller's; always
    writable by the caller (403)."""
    linked = deal.directions if deal is not None else client.directions if client else None
    if requested is not None:
        if deal is not None and not set(requested) <= set(deal.directions):
            raise invalid_field("directions", "not directions of the deal")
        chosen = requested
    elif linked is not None:
        broad = principal.is_service or principal.sees_all_directions
        chosen = (linked if broad else [d for d in linked if d in principal.directions]) or linked
    else:
        chosen = sorted(principal.directions)
        if not chosen:
            raise invalid_field(
                "directions", "a task without a deal or an organization needs directions"
            )
    writable_directions(principal, chosen)
    return sorted(set(chosen))


async def _check_assignee(
    session: AsyncSession, employee_id: uuid.UUID, directions: Sequence[str]
) -> None:
    """The assignee is an active employee working in one of the task's directions (422)."""
    employee = await clients.employee(session, employee_id)
    if employee is None or not employee.active:
        raise invalid_field("assignee_employee_id", "no such active employee", "unknown_reference")
    if set(employee.directions).isdisjoint(directions):
        raise invalid_field(
            "assignee_employee_id",
            "the employee does not work in the task's directions",
            "direction_mismatch",
        )


async def _links(
    session: AsyncSession, principal: Principal, draft: TaskDraft
) -> tuple[Deal | None, OrganizationRecord | None]:
    """The deal and the organization a new task is about: live and visible to the caller
    (422 otherwise); an organization given with a deal must be the deal's client."""
    deal = None
    if draft.deal_id is not None:
        try:
            deal = await deals.visible_deal(session, principal, draft.deal_id)
        except NotFound:
            raise invalid_field("deal_id", "no such deal", "unknown_reference") from None
        if draft.organization_id not in (None, deal.organization_id):
            raise invalid_field("organization_id", "not the deal's organization")
    client = None
    if draft.organization_id is not None:
        client = await clients.organization(session, draft.organization_id)
        if client is None or client.deleted or not principal.can_see(client.directions):
            raise invalid_field("organization_id", "no such organization", "unknown_reference")
    return deal, client


async def create_task(
    *,
    principal: Principal,
    draft: TaskDraft,
    runtime: ServiceRuntime | None = None,
    uow: UnitOfWork | None = None,
) -> Task:
    """A new open task, audited and announced (``pipeline.task.created``, and a reminder to
    the assignee through the notifier). In its own unit of work (``runtime``) or in one the
    caller owns (``uow``: an automation rule's action); one of the two."""
    if uow is not None:
        return await _create(uow, principal, draft, reminder_lead(runtime))
    if runtime is None:
        raise TypeError("create_task needs a runtime or a unit of work")
    async with pipelines.work(runtime, principal) as own:
        return await _create(own, principal, draft, reminder_lead(runtime))


async def _create(uow: UnitOfWork, principal: Principal, draft: TaskDraft, lead: timedelta) -> Task:
    session = uow.session
    deal, client = await _links(session, principal, draft)
    directions = _directions(principal, draft.directions, deal, client)
    await _check_assignee(session, draft.assignee_employee_id, directions)
    task_id = uuid.uuid4()
    await queries.insert_task(
        session,
        {
            **draft.model_dump(include={"title", "description", "deadline", "priority"}),
            "id": task_id,
            "assignee_employee_id": draft.assignee_employee_id,
            "status": "open",
            "deal_id": draft.deal_id,
            "organization_id": draft.organization_id or (deal.organization_id if deal else None),
            "directions": directions,
            "version": 1,
            "created_by": uow.actor.subject,
            "updated_by": uow.actor.subject,
        },
    )
    task = await visible_task(session, principal, task_id)
    created = {
        name: {"old": None, "new": value}
        for name, value in task.model_dump(
            mode="json",
            include={
                "title",
                "description",
                "deadline",
                "priority",
                "assignee_employee_id",
                "deal_id",
                "organization_id",
                "directions",
            },
        ).items()
        if value is not None
    }
    await uow.audit(kind=KIND, entity_id=task_id, action="created", version=1, changes=created)
    now = datetime.now(UTC)
    uow.stage(
        publishing.task_created(uow.outbox, task, uow.actor),
        publishing.task_reminder(uow.outbox, task, lead=lead, now=now, actor=uow.actor),
    )
    return task


async def get_task(*, runtime: ServiceRuntime, principal: Principal, task_id: uuid.UUID) -> Task:
    async with runtime.sessions() as session:
        return await visible_task(session, principal, task_id)


@dataclass(frozen=True)
class TaskFilter:
    assignee_employee_id: uuid.UUID | None = None
    deal_id: uuid.UUID | None = None
    organization_id: uuid.UUID | None = None
    status: str | None = None
    overdue: bool | None = None
    due_before: datetime | None = None
    limit: int = 100


async def list_tasks(
    *, runtime: ServiceRuntime, principal: Principal, where: TaskFilter
) -> list[Task]:
    async with runtime.sessions() as session:
        return await queries.list_visible(
            session,
            principal,
            assignee_employee_id=where.assignee_employee_id,
            deal_id=where.deal_id,
            organization_id=where.organization_id,
            status=where.status,
            overdue=where.overdue,
            due_before=where.due_before,
            now=datetime.now(UTC),
            limit=where.limit,
        )


async def task_audit(
    *, runtime: ServiceRuntime, principal: Principal, task_id: uuid.UUID, after: int, limit: int
) -> list[AuditEntry]:
    async with runtime.sessions() as session:
        await visible_task(session, principal, task_id)
        return await audit_trail(session, audit_log, KIND, task_id, after=after, limit=limit)


def _open(task: Task) -> None:
    if task.status != "open":
        raise Conflict("The task is done.", kind="task-done")


async def _reloaded(session: AsyncSession, task_id: uuid.UUID) -> Task:
    task = await queries.load(session, task_id)
    assert task is not None
    return task


async def update_task(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    task_id: uuid.UUID,
    patch: TaskPatch,
    expected: set[int],
) -> Task:
    """A merge patch of title, description, deadline, priority (no change: no version); a new
    deadline may become overdue again and moves the reminder."""
    async with pipelines.work(runtime, principal) as uow:
        current = await _locked(uow, principal, task_id)
        check_version(expected, current.version)
        _open(current)
        try:
            fields = patched_fields(current.fields(), patch)
        except ValidationError as exc:
            raise invalid([dict(error) for error in exc.errors(include_url=False)]) from None
        changes = changes_between(current.fields(), fields)
        if not changes:
            return current
        values: dict[str, Any] = fields.model_dump()
        if "deadline" in changes:
            values["overdue_at"] = None
        new = current.model_copy(update={**values, "version": current.version + 1})
        events = [publishing.task_changed(uow.outbox, new, changes, uow.actor)]
        if "deadline" in changes:
            lead, now = reminder_lead(runtime), datetime.now(UTC)
            events.append(
                publishing.task_reminder(uow.outbox, new, lead=lead, now=now, actor=uow.actor)
            )
        await write_version(
            uow,
            TASK,
            task_id,
            current=current.version,
            expected=expected,
            values=values,
            action="updated",
            changes=changes,
            events=events,
        )
        return await _reloaded(uow.session, task_id)


async def complete_task(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    task_id: uuid.UUID,
    completion: Completion,
    expected: set[int],
) -> Task:
    """Done, with its result (409 when already done); the reminder is cancelled."""
    async with pipelines.work(runtime, principal) as uow:
        current = await _locked(uow, principal, task_id)
        check_version(expected, current.version)
        _open(current)
        now = datetime.now(UTC)
        values = {
            "status": "done",
            "result": completion.result,
            "completed_at": now,
            "completed_by": uow.actor.subject,
        }
        new = current.model_copy(update={**values, "version": current.version + 1})
        await write_version(
            uow,
            TASK,
            task_id,
            current=current.version,
            expected=expected,
            values=values,
            action="completed",
            changes={
                "status": {"old": "open", "new": "done"},
                "result": {"old": None, "new": completion.result},
            },
            events=[
                publishing.task_completed(uow.outbox, new, uow.actor),
                publishing.task_reminder_cancelled(uow.outbox, new, uow.actor),
            ],
        )
        return await _reloaded(uow.session, task_id)


async def reassign_task(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    task_id: uuid.UUID,
    reassignment: Reassignment,
    expected: set[int],
) -> Task:
    """To another active employee of the task's directions (422); the reminder follows."""
    async with pipelines.work(runtime, principal) as uow:
        current = await _locked(uow, principal, task_id)
        check_version(expected, current.version)
        _open(current)
        target = reassignment.assignee_employee_id
        if target == current.assignee_employee_id:
            raise Conflict(
                "The task is already assigned to this employee.", kind="already-assigned"
            )
        await _check_assignee(uow.session, target, current.directions)
        await _reassign(
            uow,
            current,
            target,
            reason=reassignment.reason,
            handover_id=None,
            lead=reminder_lead(runtime),
            expected=expected,
        )
        return await _reloaded(uow.session, task_id)


async def _reassign(
    uow: UnitOfWork,
    current: Task,
    target: uuid.UUID,
    *,
    reason: str | None,
    handover_id: uuid.UUID | None,
    lead: timedelta,
    expected: set[int],
) -> None:
    new = current.model_copy(
        update={"assignee_employee_id": target, "version": current.version + 1}
    )
    await write_version(
        uow,
        TASK,
        current.id,
        current=current.version,
        expected=expected,
        values={"assignee_employee_id": target},
        action="reassigned" if handover_id is None else "handed_over",
        changes={
            "assignee_employee_id": {"old": str(current.assignee_employee_id), "new": str(target)}
        },
        note=reason if handover_id is None else f"hand-over {handover_id}: {reason or ''}",
        events=[
            publishing.task_reassigned(
                uow.outbox,
                new,
                from_employee_id=current.assignee_employee_id,
                reason=reason,
                handover_id=handover_id,
                actor=uow.actor,
            ),
            publishing.task_reminder(
                uow.outbox, new, lead=lead, now=datetime.now(UTC), actor=uow.actor
            ),
        ],
    )


async def hand_over(uow: UnitOfWork, handover: ResponsibilityHandedOver, lead: timedelta) -> int:
    """A client handed over from one employee to another (interactions' event): every open
    task about that client assigned to the first goes to the second; how many."""
    ids = await queries.handed_over_ids(
        uow.session, handover.organization_id, handover.from_employee_id
    )
    for task_id in ids:
        current = await _reloaded(uow.session, task_id)
        await _reassign(
            uow,
            current,
            handover.to_employee_id,
            reason=handover.reason,
            handover_id=handover.handover_id,
            lead=lead,
            expected={current.version},
        )
    return len(ids)


async def follow_client(
    uow: UnitOfWork, before: OrganizationRecord | None, after: OrganizationRecord
) -> None:
    """A merged client's tasks move to the survivor, as its deals do (a new version, an audit
    entry and an event each)."""
    await clients.move_to_survivor(
        uow, before, after, TASK, queries.client_task_ids, _reloaded, publishing.task_changed
    )


# --- overdue detection ---------------------------------------------------------------------


async def mark_overdue(
    sessions: async_sessionmaker[AsyncSession], outbox: Outbox, *, now: datetime, batch: int
) -> int:
    """One batch of open tasks newly past their deadline: ``overdue_at`` set, an audit entry,
    ``pipeline.task.overdue`` and a notice to the assignee, in one transaction; how many.
    Rows are claimed ``SKIP LOCKED``: replicas share the work and never report one twice."""
    async with unit_of_work(sessions, outbox, audit_log, SERVICE_ACTOR) as uow:
        found = await queries.claim_overdue(uow.session, now, batch)
        for task in found:
            await queries.mark_overdue(uow.session, task.id, now)
            await uow.audit(
                kind=KIND,
                entity_id=task.id,
                action="overdue",
                version=task.version,
                changes={"overdue_at": {"old": None, "new": now.isoformat()}},
            )
            uow.stage(
                publishing.task_overdue(outbox, task, now, uow.actor),
                publishing.task_overdue_notice(outbox, task, uow.actor),
            )
    if found:
        log.info("tasks became overdue", count=len(found))
    return len(found)


async def overdue_worker(runtime: ServiceRuntime) -> None:
    """Scan until cancelled: at once again after a full batch, else after the interval."""
    settings = _settings(runtime)
    while True:
        try:
            marked = await mark_overdue(
                runtime.sessions,
                runtime.outbox,
                now=datetime.now(UTC),
                batch=settings.task_overdue_batch,
            )
        except Exception:  # the next scan retries; the loop must not die
            log.exception("overdue task scan failed")
            marked = 0
        if marked < settings.task_overdue_batch:
            await asyncio.sleep(settings.task_overdue_interval)


# --- the calendar feed ---------------------------------------------------------------------


@dataclass(frozen=True)
class FeedIssued:
    feed_id: uuid.UUID
    url: str
    created_at: datetime


async def _oneself_or_admin(
    session: AsyncSession, principal: Principal, employee_id: uuid.UUID
) -> None:
    """The employee himself (by token subject or e-mail) or an administrator; 404 otherwise,
    and for an employee unknown here or deactivated."""
    found = await queries.employee_login(session, employee_id)
    oneself = found is not None and (
        principal.subject == str(employee_id)
        or (principal.email is not None and principal.email.strip().lower() == found[0].lower())
    )
    if found is None or not found[1] or not (oneself or principal.has_role(Role.ADMIN)):
        raise NotFound(NO_EMPLOYEE)


async def issue_feed(
    *, runtime: ServiceRuntime, principal: Principal, employee_id: uuid.UUID
) -> FeedIssued:
    """A new secret feed URL of the employee's open tasks, revoking the one before."""
    token = new_token()
    async with runtime.sessions() as session, session.begin():
        await _oneself_or_admin(session, principal, employee_id)
        replaced = await queries.revoke_feed(session, employee_id, principal.subject)
        created_at = await queries.insert_feed(
            session, token.feed_id, employee_id, token.secret_sha256, principal.subject
        )
    log.info(
        "task feed issued",
        employee_id=str(employee_id),
        feed_id=str(token.feed_id),
        replaced=str(replaced) if replaced else None,
        by=principal.subject,
    )
    return FeedIssued(token.feed_id, f"/v1/task-feeds/{token.token}.ics", created_at)


async def revoke_feed(
    *, runtime: ServiceRuntime, principal: Principal, employee_id: uuid.UUID
) -> None:
    async with runtime.sessions() as session, session.begin():
        await _oneself_or_admin(session, principal, employee_id)
        revoked = await queries.revoke_feed(session, employee_id, principal.subject)
    if revoked is None:
        raise NotFound(NO_FEED)
    log.info("task feed revoked", employee_id=str(employee_id), by=principal.subject)


async def employee_calendar(
    *, runtime: ServiceRuntime, principal: Principal, employee_id: uuid.UUID
) -> bytes:
    """The employee's open tasks the caller sees, as iCalendar."""
    async with runtime.sessions() as session:
        found = await queries.open_tasks_of(session, principal, employee_id)
    return tasks_calendar(employee_id, found, datetime.now(UTC))


async def feed_calendar(*, runtime: ServiceRuntime, token: str) -> bytes:
    """The calendar of a secret feed URL: the employee's open tasks in the directions the
    employee works in now (read at every fetch); 404 for an unknown, revoked or rotated token
    and for a deactivated employee."""
    parsed = parse_token(token)
    if parsed is None:
        raise NotFound(NO_FEED)
    feed_id, secret = parsed
    async with runtime.sessions() as session:
        found = await queries.live_feed(session, feed_id)
        if found is None or not secret_matches(found[1], secret):
            raise NotFound(NO_FEED)
        employee_id, _, directions = found
        employee = Principal(subject=str(employee_id), directions=frozenset(directions))
        open_tasks = await queries.open_tasks_of(session, employee, employee_id)
    return tasks_calendar(employee_id, open_tasks, datetime.now(UTC))
