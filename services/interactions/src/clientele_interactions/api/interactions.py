"""The contact log: log or plan, read, list, change (If-Match), complete, cancel, audit trail."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Literal

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.auth.principal import Principal
from clientele_shared.http.concurrency import IfMatch, check_version, etag, required_versions
from clientele_shared.http.params import EntryCursor
from fastapi import APIRouter, Query, Response, status
from sqlalchemy import and_, any_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_interactions.api.common import ClockDep, Runtime, Settings, Writer
from clientele_interactions.domain.cards import ClientCard
from clientele_interactions.domain.model import (
    AuditEntry,
    CancelRequest,
    CompleteRequest,
    Interaction,
    InteractionDraft,
    InteractionPatch,
    Kind,
    LoggedInteraction,
    LogOutcome,
    NextContact,
    Status,
)
from clientele_interactions.domain.rules import (
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
from clientele_interactions.operations import (
    actor_of,
    audit,
    blocked_among,
    bump_summary,
    check_employee,
    check_references,
    insert_interaction,
    load_results,
    lock_participants,
    resolve_persons,
    update_interaction,
    visible_card,
    visible_clients,
    visible_interaction,
    writable_card,
    writable_interaction,
)
from clientele_interactions.publishing import Publisher
from clientele_interactions.settings import InteractionsSettings
from clientele_interactions.store import client_cards, interaction_audit, interactions, persons

router = APIRouter(prefix="/v1/interactions", tags=["interactions"])


def client_name(card: ClientCard) -> str:
    return card.short_name or card.legal_name


class Changes:
    """One request's writes: builds events for the card's directions and the caller."""

    def __init__(
        self,
        runtime: Runtime,
        session: AsyncSession,
        card: ClientCard,
        principal: Principal,
        settings: InteractionsSettings,
        now: datetime,
    ) -> None:
        self.runtime = runtime
        self.session = session
        self.card = card
        self.principal = principal
        self.actor = actor_of(principal)
        self.publisher = Publisher(runtime.outbox, card.directions, self.actor)
        self.lead = timedelta(minutes=settings.reminder_lead_minutes)
        self.now = now

    async def remind(self, interaction: Interaction) -> None:
        await self.runtime.outbox.add(
            self.session,
            self.publisher.reminder(
                interaction, lead=self.lead, now=self.now, client_name=client_name(self.card)
            ),
        )

    async def plan_next(self, previous: Interaction, following: NextContact) -> Interaction:
        """Plan the contact following ``previous`` (refused with a blocked counterparty)."""
        values = next_contact_values(previous.model_dump(), following, self.now)
        if following.responsible_employee_id is not None:
            await check_employee(
                self.session,
                self.principal,
                following.responsible_employee_id,
                field="next.responsible_employee_id",
            )
        values["person_ids"], blocked = await resolve_persons(
            self.session, self.principal, values["person_ids"], field="next.person_ids"
        )
        refuse_blocked(
            status="planned",
            direction=values["direction"],
            organization_id=self.card.organization_id,
            organization_blocked=self.card.blocked,
            blocked_person_ids=blocked,
        )
        planned = await insert_interaction(self.session, values, created_by=self.actor.subject)
        await audit(
            self.session,
            self.actor,
            interaction_id=planned.id,
            action="planned",
            version=1,
            changes=created_changes(planned),
            note=f"follows {previous.id}",
        )
        await self.runtime.outbox.add(self.session, self.publisher.created(planned))
        await self.remind(planned)
        return planned


@router.post("", status_code=status.HTTP_201_CREATED)
async def log_interaction(
    draft: InteractionDraft,
    principal: Writer,
    runtime: Runtime,
    settings: Settings,
    clock: ClockDep,
    response: Response,
) -> LogOutcome:
    """Log a contact that happened (``status: done``) or plan one (``status: planned``, with
    ``due_at`` and ``responsible_employee_id``).

    A contact that happened may plan the next one in the same call (``next``); otherwise the
    answer offers the follow-up its result suggests (``suggested_next``). The organization must
    be visible to the caller (404) and in one of the caller's directions (403); a merged
    organization stands for its survivor, a merged person for theirs. The responsible
    employee, the deal and the campaign must be known here and visible to the caller (the deal
    one of this client); each failing reference is a 422, the same whether it does not exist or
    lies in another direction.

    A client or person in the unwanted counterparty register takes no new business: a planned
    or outgoing contact with one is refused (409 ``counterparty-blocked``); an inbound contact
    that happened is logged (the log tells what happened).
    """
    now = clock.now()
    check_log_time(draft, now)
    async with runtime.sessions() as session, session.begin():
        card = await writable_card(session, principal, draft.organization_id)
        await check_references(session, principal, card, draft.model_dump())
        person_ids, blocked = await resolve_persons(
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
        results = await load_results(session)
        check_draft(draft, results)
        changes = Changes(runtime, session, card, principal, settings, now)
        interaction = await insert_interaction(
            session, creation_values(draft, now), created_by=principal.subject
        )
        await audit(
            session,
            changes.actor,
            interaction_id=interaction.id,
            action="logged" if interaction.status == "done" else "planned",
            version=1,
            changes=created_changes(interaction),
        )
        await runtime.outbox.add(session, changes.publisher.created(interaction))
        if interaction.status == "planned":
            await changes.remind(interaction)
        following = None
        if draft.next is not None:
            following = await changes.plan_next(interaction, draft.next)
        await bump_summary(session, card.organization_id)
    response.headers["ETag"] = etag(interaction.version)
    response.headers["Location"] = f"/v1/interactions/{interaction.id}"
    return _outcome(interaction, following, results, now, blocked=card.blocked or bool(blocked))


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


@router.get("/{interaction_id}")
async def get_interaction(
    interaction_id: uuid.UUID, principal: CurrentPrincipal, runtime: Runtime, response: Response
) -> LoggedInteraction:
    """One interaction, with the blocked flags of its client and participants; 404 when it
    does not exist, its client was deleted or is outside the caller's directions."""
    async with runtime.sessions() as session:
        interaction, card = await visible_interaction(session, principal, interaction_id)
        blocked = await blocked_among(session, interaction.person_ids)
    response.headers["ETag"] = etag(interaction.version)
    return LoggedInteraction(
        **interaction.model_dump(), client_blocked=card.blocked, blocked_person_ids=blocked
    )


@router.get("")
async def list_interactions(
    principal: CurrentPrincipal,
    runtime: Runtime,
    clock: ClockDep,
    organization_id: uuid.UUID | None = None,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    kind: Kind | None = None,
    responsible_employee_id: uuid.UUID | None = None,
    overdue: Annotated[bool | None, Query(description="only planned contacts past due")] = None,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: Annotated[datetime | None, Query(alias="to")] = None,
    order: Literal["recent", "due"] = "recent",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> list[LoggedInteraction]:
    """Interactions of the clients visible to the caller (not those of deleted clients), with
    the blocked flags of their client and participants. ``from``/``to`` bound the time of a
    contact (when it happened, or is due when planned); ``recent`` orders the latest first,
    ``due`` the soonest due first."""
    when = func.coalesce(interactions.c.occurred_at, interactions.c.due_at)
    blocked_people = (
        select(func.array_agg(persons.c.person_id))
        .where(persons.c.person_id == any_(interactions.c.person_ids), persons.c.blocked)
        .scalar_subquery()
    )
    stmt = (
        select(
            interactions,
            client_cards.c.blocked.label("client_blocked"),
            blocked_people.label("blocked_person_ids"),
        )
        .join(client_cards, client_cards.c.organization_id == interactions.c.organization_id)
        .where(visible_clients(principal))
    )
    async with runtime.sessions() as session:
        if organization_id is not None:  # a merged organization's survivor
            card = await visible_card(session, principal, organization_id)
            stmt = stmt.where(interactions.c.organization_id == card.organization_id)
        if status_ is not None:
            stmt = stmt.where(interactions.c.status == status_)
        if kind is not None:
            stmt = stmt.where(interactions.c.kind == kind)
        if responsible_employee_id is not None:
            stmt = stmt.where(interactions.c.responsible_employee_id == responsible_employee_id)
        if overdue is not None:
            past_due = and_(
                interactions.c.status == "planned",
                or_(interactions.c.overdue_at.is_not(None), interactions.c.due_at <= clock.now()),
            )
            stmt = stmt.where(past_due if overdue else ~past_due)
        if since is not None:
            stmt = stmt.where(when >= since)
        if until is not None:
            stmt = stmt.where(when < until)
        ordering = (
            (when.desc(), interactions.c.id)
            if order == "recent"
            else (when.asc(), interactions.c.id)
        )
        rows = (await session.execute(stmt.order_by(*ordering).limit(limit).offset(offset))).all()
    return [
        LoggedInteraction.model_validate(
            {**row._mapping, "blocked_person_ids": row.blocked_person_ids or []}
        )
        for row in rows
    ]


@router.patch("/{interaction_id}")
async def update_interaction_fields(
    interaction_id: uuid.UUID,
    patch: InteractionPatch,
    principal: Writer,
    runtime: Runtime,
    settings: Settings,
    clock: ClockDep,
    response: Response,
    if_match: IfMatch = None,
) -> Interaction:
    """Change some fields (JSON merge patch). Moving a planned contact's ``due_at`` is a
    reschedule (its reminder moves too). Needs ``If-Match`` (428 without, 412 when stale)."""
    wanted = required_versions(if_match)
    now = clock.now()
    async with runtime.sessions() as session, session.begin():
        await lock_participants(session, interaction_id, patch.person_ids)
        current, card = await writable_interaction(session, principal, interaction_id)
        check_version(wanted, current.version)
        if patch.person_ids is not None:
            resolved, _ = await resolve_persons(
                session, principal, patch.person_ids, field="person_ids"
            )
            patch = patch.model_copy(update={"person_ids": resolved})
        named = patch.model_dump(include=patch.model_fields_set)
        await check_references(
            session,
            principal,
            card,
            {name: value for name, value in named.items() if value != getattr(current, name)},
        )
        outcome = apply_patch(current, patch, await load_results(session), now=now)
        if not outcome.changes:
            response.headers["ETag"] = etag(current.version)
            return current
        changes = Changes(runtime, session, card, principal, settings, now)
        updated = await update_interaction(
            session, current, outcome.values, updated_by=principal.subject
        )
        rescheduled = outcome.rescheduled_from is not None
        await audit(
            session,
            changes.actor,
            interaction_id=updated.id,
            action="rescheduled" if rescheduled else "updated",
            version=updated.version,
            changes=outcome.changes,
        )
        if outcome.rescheduled_from is not None:
            await runtime.outbox.add(
                session, changes.publisher.rescheduled(updated, outcome.rescheduled_from)
            )
        others = {name: c for name, c in outcome.changes.items() if name != "due_at"}
        if others:
            await runtime.outbox.add(session, changes.publisher.updated(updated, others))
        if updated.status == "planned" and (
            rescheduled or "responsible_employee_id" in outcome.changes or "kind" in others
        ):
            await changes.remind(updated)
        await bump_summary(session, card.organization_id)
    response.headers["ETag"] = etag(updated.version)
    return updated


@router.post("/{interaction_id}/complete")
async def complete_interaction(
    interaction_id: uuid.UUID,
    request: CompleteRequest,
    principal: Writer,
    runtime: Runtime,
    settings: Settings,
    clock: ClockDep,
    response: Response,
    if_match: IfMatch = None,
) -> LogOutcome:
    """Record that a planned contact happened, with its result; ``next`` plans the following
    contact in the same call. Needs ``If-Match``; 409 unless the contact is planned."""
    wanted = required_versions(if_match)
    now = clock.now()
    async with runtime.sessions() as session, session.begin():
        next_people = request.next.person_ids if request.next else None
        await lock_participants(session, interaction_id, request.person_ids, next_people)
        current, card = await writable_interaction(session, principal, interaction_id)
        check_version(wanted, current.version)
        if request.person_ids is not None:
            resolved, _ = await resolve_persons(
                session, principal, request.person_ids, field="person_ids"
            )
            request = request.model_copy(update={"person_ids": resolved})
        results = await load_results(session)
        values = completion_values(current, request, results, now=now)
        changes = Changes(runtime, session, card, principal, settings, now)
        done = await update_interaction(session, current, values, updated_by=principal.subject)
        await audit(
            session,
            changes.actor,
            interaction_id=done.id,
            action="completed",
            version=done.version,
            changes=changes_of(current, values),
        )
        following = None
        if request.next is not None:
            following = await changes.plan_next(done, request.next)
        await runtime.outbox.add(
            session, changes.publisher.completed(done, following.id if following else None)
        )
        await changes.remind(done)  # cancels the reminder: nothing is due any more
        await bump_summary(session, card.organization_id)
        blocked = card.blocked or bool(await blocked_among(session, done.person_ids))
    response.headers["ETag"] = etag(done.version)
    return _outcome(done, following, results, now, blocked=blocked)


@router.post("/{interaction_id}/cancel")
async def cancel_interaction(
    interaction_id: uuid.UUID,
    request: CancelRequest,
    principal: Writer,
    runtime: Runtime,
    settings: Settings,
    clock: ClockDep,
    response: Response,
    if_match: IfMatch = None,
) -> Interaction:
    """A planned contact will not take place (its reminder is cancelled). Needs ``If-Match``;
    409 unless the contact is planned."""
    wanted = required_versions(if_match)
    now = clock.now()
    async with runtime.sessions() as session, session.begin():
        current, card = await writable_interaction(session, principal, interaction_id)
        check_version(wanted, current.version)
        if current.status != "planned":
            raise StateConflict(
                f"Only a planned interaction can be cancelled (this one is {current.status})."
            )
        values = {"status": "cancelled", "cancel_reason": request.reason}
        changes = Changes(runtime, session, card, principal, settings, now)
        cancelled = await update_interaction(session, current, values, updated_by=principal.subject)
        await audit(
            session,
            changes.actor,
            interaction_id=cancelled.id,
            action="cancelled",
            version=cancelled.version,
            changes=changes_of(current, values),
        )
        await runtime.outbox.add(session, changes.publisher.cancelled(cancelled))
        await changes.remind(cancelled)
        await bump_summary(session, card.organization_id)
    response.headers["ETag"] = etag(cancelled.version)
    return cancelled


@router.get("/{interaction_id}/audit")
async def interaction_audit_trail(
    interaction_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: Runtime,
    after: EntryCursor = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditEntry]:
    """Who changed what and when, oldest first; 404 as for the interaction itself."""
    async with runtime.sessions() as session:
        await visible_interaction(session, principal, interaction_id)
        rows = (
            await session.execute(
                select(interaction_audit)
                .where(
                    interaction_audit.c.interaction_id == interaction_id,
                    interaction_audit.c.id > after,
                )
                .order_by(interaction_audit.c.id)
                .limit(limit)
            )
        ).all()
    return [AuditEntry.model_validate(row, from_attributes=True) for row in rows]
