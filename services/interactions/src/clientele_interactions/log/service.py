"""Contact log operations: log or plan a contact, read and list them, change one (If-Match),
complete or cancel it, read its audit trail, and mark planned contacts overdue."""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any

from clientele_shared.auth.principal import Principal
from clientele_shared.events.outbox import Outbox
from clientele_shared.http.concurrency import check_version
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import UnitOfWork, unit_of_work
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clientele_interactions.clients.rules import ClientCard
from clientele_interactions.log import queries
from clientele_interactions.log.rules import (
    Results,
    StateConflict,
    apply_patch,
    changes_of,
    check_draft,
    check_log_time,
    completion_values,
    created_changes,
    creation_values,
    next_contact_values,
    refuse_blocked,
    suggest_next,
)
from clientele_interactions.log.schemas import (
    AuditEntry,
    CancelRequest,
    CompleteRequest,
    Interaction,
    InteractionDraft,
    InteractionPatch,
    LoggedInteraction,
    LogOutcome,
    NextContact,
)
from clientele_interactions.publishing import Publisher
from clientele_interactions.tables import interaction_audit
from clientele_interactions.visibility import visible_card, writable_card


class _Writes:
    """One operation's writes about one client: events for the card's directions."""

    def __init__(
        self,
        runtime: ServiceRuntime,
        uow: UnitOfWork,
        card: ClientCard,
        lead: timedelta,
        now: datetime,
    ) -> None:
        self.uow = uow
        self.card = card
        self.publisher = Publisher(runtime.outbox, card.directions, uow.actor)
        self.lead = lead
        self.now = now

    def remind(self, interaction: Interaction) -> None:
        """Stage the contact's reminder (a cancellation when nothing is due any more)."""
        self.uow.stage(
            self.publisher.reminder(
                interaction,
                lead=self.lead,
                now=self.now,
                client_name=self.card.short_name or self.card.legal_name,
            )
        )

    async def audit(self, interaction: Interaction, action: str, changes: dict[str, Any]) -> None:
        await self.uow.audit(
            kind="interaction",
            entity_id=interaction.id,
            action=action,
            version=interaction.version,
            changes=changes,
        )

    async def plan_next(
        self, principal: Principal, previous: Interaction, following: NextContact
    ) -> Interaction:
        """Plan the contact following ``previous`` (refused with a blocked counterparty)."""
        session = self.uow.session
        values = next_contact_values(previous.model_dump(), following, self.now)
        if following.responsible_employee_id is not None:
            await queries.check_employee(
                session,
                principal,
                following.responsible_employee_id,
                field="next.responsible_employee_id",
            )
        values["person_ids"], blocked = await queries.resolve_persons(
            session, principal, values["person_ids"], field="next.person_ids"
        )
        refuse_blocked(
            status="planned",
            direction=values["direction"],
            organization_id=self.card.organization_id,
            organization_blocked=self.card.blocked,
            blocked_person_ids=blocked,
        )
        planned = await queries.insert_interaction(
            session, values, created_by=self.uow.actor.subject
        )
        await self.uow.audit(
            kind="interaction",
            entity_id=planned.id,
            action="planned",
            version=1,
            changes=created_changes(planned),
            note=f"follows {previous.id}",
        )
        self.uow.stage(self.publisher.created(planned))
        self.remind(planned)
        return planned


def _outcome(
    interaction: Interaction,
    following: Interaction | None,
    results: Results,
    now: datetime,
    *,
    blocked: bool,
) -> LogOutcome:
    """No follow-up is suggested with a blocked counterparty (it could not be planned)."""
    suggested = None if following or blocked else suggest_next(interaction, results, now=now)
    return LogOutcome(interaction=interaction, next_planned=following, suggested_next=suggested)


def _open(runtime: ServiceRuntime, principal: Principal) -> AbstractAsyncContextManager[UnitOfWork]:
    return unit_of_work(runtime.sessions, runtime.outbox, interaction_audit, principal)


async def log_interaction(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    draft: InteractionDraft,
    now: datetime,
    reminder_lead: timedelta,
) -> LogOutcome:
    """Log a contact that happened or plan one (and the next in the same call): the client must
    be one the caller may write about, every reference known and visible (422), a planned or
    outgoing contact with a blocked counterparty is refused (409)."""
    check_log_time(draft, now)
    async with _open(runtime, principal) as uow:
        session = uow.session
        card = await writable_card(session, principal, draft.organization_id)
        await queries.check_references(session, principal, card, draft.model_dump())
        person_ids, blocked = await queries.resolve_persons(
            session, principal, draft.person_ids, field="person_ids"
        )
        refuse_blocked(
            status=draft.status,
            direction=draft.direction,
            organization_id=card.organization_id,
            organization_blocked=card.blocked,
            blocked_person_ids=blocked,
        )
        draft = draft.model_copy(
            update={"organization_id": card.organization_id, "person_ids": person_ids}
        )
        results = await queries.load_results(session)
        check_draft(draft, results)
        writes = _Writes(runtime, uow, card, reminder_lead, now)
        interaction = await queries.insert_interaction(
            session, creation_values(draft, now), created_by=principal.subject
        )
        action = "logged" if interaction.status == "done" else "planned"
        await writes.audit(interaction, action, created_changes(interaction))
        uow.stage(writes.publisher.created(interaction))
        if interaction.status == "planned":
            writes.remind(interaction)
        following = None
        if draft.next is not None:
            following = await writes.plan_next(principal, interaction, draft.next)
        await queries.bump_summary(session, card.organization_id)
    return _outcome(interaction, following, results, now, blocked=card.blocked or bool(blocked))


async def get_interaction(
    *, runtime: ServiceRuntime, principal: Principal, interaction_id: uuid.UUID
) -> LoggedInteraction:
    """One interaction with the blocked flags of its client and participants (404 as for its
    client)."""
    async with runtime.sessions() as session:
        interaction, card = await queries.visible_interaction(session, principal, interaction_id)
        blocked = await queries.blocked_among(session, interaction.person_ids)
    return LoggedInteraction(
        **interaction.model_dump(), client_blocked=card.blocked, blocked_person_ids=blocked
    )


async def list_interactions(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    organization_id: uuid.UUID | None,
    status: str | None,
    kind: str | None,
    responsible_employee_id: uuid.UUID | None,
    overdue: bool | None,
    since: datetime | None,
    until: datetime | None,
    order: str,
    limit: int,
    offset: int,
    now: datetime,
) -> list[LoggedInteraction]:
    """Interactions of the clients visible to the caller (a merged organization stands for its
    survivor; 404 for one the caller may not see)."""
    async with runtime.sessions() as session:
        if organization_id is not None:
            organization_id = (
                await visible_card(session, principal, organization_id)
            ).organization_id
        rows = await queries.list_interactions(
            session,
            principal,
            organization_id=organization_id,
            status=status,
            kind=kind,
            responsible_employee_id=responsible_employee_id,
            overdue=overdue,
            since=since,
            until=until,
            order=order,
            limit=limit,
            offset=offset,
            now=now,
        )
    return [
        LoggedInteraction.model_validate(
            {**row._mapping, "blocked_person_ids": row.blocked_person_ids or []}
        )
        for row in rows
    ]


async def _lock_for_change(
    session: AsyncSession,
    principal: Principal,
    interaction_id: uuid.UUID,
    expected: set[int],
    person_ids: list[uuid.UUID] | None,
    *more: list[uuid.UUID] | None,
) -> tuple[Interaction, ClientCard, list[uuid.UUID] | None]:
    """Lock the persons a change may name (``person_ids`` and ``more``), then the interaction
    (the order a person merge takes them in); check If-Match (412); resolve the new
    participants (None when the change names none)."""
    await queries.lock_participants(session, interaction_id, person_ids, *more)
    current, card = await queries.writable_interaction(session, principal, interaction_id)
    check_version(expected, current.version)
    if person_ids is None:
        return current, card, None
    resolved, _ = await queries.resolve_persons(session, principal, person_ids, field="person_ids")
    return current, card, resolved


async def change_interaction(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    interaction_id: uuid.UUID,
    patch: InteractionPatch,
    expected: set[int],
    now: datetime,
    reminder_lead: timedelta,
) -> Interaction:
    """Apply a merge patch to the version ``expected`` names (412 otherwise); moving a planned
    contact's ``due_at`` reschedules it and its reminder. Unchanged: the current version."""
    async with _open(runtime, principal) as uow:
        session = uow.session
        current, card, resolved = await _lock_for_change(
            session, principal, interaction_id, expected, patch.person_ids
        )
        if resolved is not None:
            patch = patch.model_copy(update={"person_ids": resolved})
        named = patch.model_dump(include=patch.model_fields_set)
        await queries.check_references(
            session,
            principal,
            card,
            {name: value for name, value in named.items() if value != getattr(current, name)},
        )
        outcome = apply_patch(current, patch, await queries.load_results(session), now=now)
        if not outcome.changes:
            return current
        writes = _Writes(runtime, uow, card, reminder_lead, now)
        updated = await queries.update_interaction(
            session, current, outcome.values, updated_by=principal.subject
        )
        rescheduled = outcome.rescheduled_from is not None
        await writes.audit(updated, "rescheduled" if rescheduled else "updated", outcome.changes)
        if outcome.rescheduled_from is not None:
            uow.stage(writes.publisher.rescheduled(updated, outcome.rescheduled_from))
        others = {name: c for name, c in outcome.changes.items() if name != "due_at"}
        if others:
            uow.stage(writes.publisher.updated(updated, others))
        if updated.status == "planned" and (
            rescheduled or "responsible_employee_id" in outcome.changes or "kind" in others
        ):
            writes.remind(updated)
        await queries.bump_summary(session, card.organization_id)
    return updated


async def complete_interaction(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    interaction_id: uuid.UUID,
    request: CompleteRequest,
    expected: set[int],
    now: datetime,
    reminder_lead: timedelta,
) -> LogOutcome:
    """A planned contact happened, with its result (409 unless planned; 412 unless the version
    ``expected`` names); ``next`` plans the following one in the same transaction."""
    async with _open(runtime, principal) as uow:
        session = uow.session
        next_people = request.next.person_ids if request.next else None
        current, card, resolved = await _lock_for_change(
            session, principal, interaction_id, expected, request.person_ids, next_people
        )
        if resolved is not None:
            request = request.model_copy(update={"person_ids": resolved})
        results = await queries.load_results(session)
        values = completion_values(current, request, results, now=now)
        writes = _Writes(runtime, uow, card, reminder_lead, now)
        done = await queries.update_interaction(
            session, current, values, updated_by=principal.subject
        )
        await writes.audit(done, "completed", changes_of(current, values))
        following = None
        if request.next is not None:
            following = await writes.plan_next(principal, done, request.next)
        uow.stage(writes.publisher.completed(done, following.id if following else None))
        writes.remind(done)  # cancels the reminder: nothing is due any more
        await queries.bump_summary(session, card.organization_id)
        blocked = card.blocked or bool(await queries.blocked_among(session, done.person_ids))
    return _outcome(done, following, results, now, blocked=blocked)


async def cancel_interaction(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    interaction_id: uuid.UUID,
    request: CancelRequest,
    expected: set[int],
    now: datetime,
    reminder_lead: timedelta,
) -> Interaction:
    """A planned contact will not take place; its reminder is cancelled (409 unless planned)."""
    async with _open(runtime, principal) as uow:
        current, card = await queries.writable_interaction(uow.session, principal, interaction_id)
        check_version(expected, current.version)
        if current.status != "planned":
            raise StateConflict(
                f"Only a planned interaction can be cancelled (this one is {current.status})."
            )
        values = {"status": "cancelled", "cancel_reason": request.reason}
        writes = _Writes(runtime, uow, card, reminder_lead, now)
        cancelled = await queries.update_interaction(
            uow.session, current, values, updated_by=principal.subject
        )
        await writes.audit(cancelled, "cancelled", changes_of(current, values))
        uow.stage(writes.publisher.cancelled(cancelled))
        writes.remind(cancelled)
        await queries.bump_summary(uow.session, card.organization_id)
    return cancelled


async def audit_trail(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    interaction_id: uuid.UUID,
    after: int,
    limit: int,
) -> list[AuditEntry]:
    """Who changed what and when, oldest first; 404 as for the interaction itself."""
    async with runtime.sessions() as session:
        await queries.visible_interaction(session, principal, interaction_id)
        return await queries.audit_entries(session, interaction_id, after=after, limit=limit)


async def mark_overdue(
    *,
    sessions: async_sessionmaker[AsyncSession],
    outbox: Outbox,
    now: datetime,
    batch: int,
) -> int:
    """Mark one batch of planned contacts past due as overdue, once per due time: ``overdue_at``,
    an audit entry, ``interactions.interaction.overdue`` and a notice to the responsible
    employee each, in one transaction; the number marked."""
    async with unit_of_work(sessions, outbox, interaction_audit, queries.SERVICE_ACTOR) as uow:
        rows = await queries.claim_overdue(uow.session, now, batch)
        for row in rows:
            interaction = Interaction.model_validate(row, from_attributes=True)
            await queries.mark_overdue(uow.session, interaction.id, now)
            await uow.audit(
                kind="interaction",
                entity_id=interaction.id,
                action="overdue",
                version=interaction.version,
                changes={"overdue_at": {"old": None, "new": now.isoformat()}},
            )
            publisher = Publisher(outbox, row.card_directions, queries.SERVICE_ACTOR)
            uow.stage(publisher.overdue(interaction, now))
            notice = publisher.overdue_notice(
                interaction, client_name=row.card_short_name or row.card_legal_name
            )
            if notice is not None:
                uow.stage(notice)
            await queries.bump_summary(uow.session, interaction.organization_id)
    return len(rows)
