"""HTTP of the contact log: log or plan, read, list, change (If-Match), complete, cancel, audit."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Literal

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.http.concurrency import IfMatch, etag, required_versions
from clientele_shared.http.params import EntryCursor
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Query, Response, status

from clientele_interactions.dependencies import ClockDep, Logger, Settings, Writer
from clientele_interactions.log import service
from clientele_interactions.log.schemas import (
    AuditEntry,
    CancelRequest,
    CompleteRequest,
    Interaction,
    InteractionDraft,
    InteractionPatch,
    Kind,
    LoggedInteraction,
    LogOutcome,
    Status,
)
from clientele_interactions.settings import InteractionsSettings

router = APIRouter(prefix="/v1/interactions", tags=["interactions"])


def _lead(settings: InteractionsSettings) -> timedelta:
    return timedelta(minutes=settings.reminder_lead_minutes)


@router.post("", status_code=status.HTTP_201_CREATED)
async def log_interaction(
    draft: InteractionDraft,
    principal: Logger,
    runtime: CurrentRuntime,
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
    outcome = await service.log_interaction(
        runtime=runtime,
        principal=principal,
        draft=draft,
        now=clock.now(),
        reminder_lead=_lead(settings),
    )
    response.headers["ETag"] = etag(outcome.interaction.version)
    response.headers["Location"] = f"/v1/interactions/{outcome.interaction.id}"
    return outcome


@router.get("/{interaction_id}")
async def get_interaction(
    interaction_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
) -> LoggedInteraction:
    """One interaction, with the blocked flags of its client and participants; 404 when it
    does not exist, its client was deleted or is outside the caller's directions."""
    interaction = await service.get_interaction(
        runtime=runtime, principal=principal, interaction_id=interaction_id
    )
    response.headers["ETag"] = etag(interaction.version)
    return interaction


@router.get("")
async def list_interactions(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
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
    return await service.list_interactions(
        runtime=runtime,
        principal=principal,
        organization_id=organization_id,
        status=status_,
        kind=kind,
        responsible_employee_id=responsible_employee_id,
        overdue=overdue,
        since=since,
        until=until,
        order=order,
        limit=limit,
        offset=offset,
        now=clock.now(),
    )


@router.patch("/{interaction_id}")
async def update_interaction_fields(
    interaction_id: uuid.UUID,
    patch: InteractionPatch,
    principal: Writer,
    runtime: CurrentRuntime,
    settings: Settings,
    clock: ClockDep,
    response: Response,
    if_match: IfMatch = None,
) -> Interaction:
    """Change some fields (JSON merge patch). Moving a planned contact's ``due_at`` is a
    reschedule (its reminder moves too). Needs ``If-Match`` (428 without, 412 when stale)."""
    updated = await service.change_interaction(
        runtime=runtime,
        principal=principal,
        interaction_id=interaction_id,
        patch=patch,
        expected=required_versions(if_match),
        now=clock.now(),
        reminder_lead=_lead(settings),
    )
    response.headers["ETag"] = etag(updated.version)
    return updated


@router.post("/{interaction_id}/complete")
async def complete_interaction(
    interaction_id: uuid.UUID,
    request: CompleteRequest,
    principal: Writer,
    runtime: CurrentRuntime,
    settings: Settings,
    clock: ClockDep,
    response: Response,
    if_match: IfMatch = None,
) -> LogOutcome:
    """Record that a planned contact happened, with its result; ``next`` plans the following
    contact in the same call. Needs ``If-Match``; 409 unless the contact is planned."""
    outcome = await service.complete_interaction(
        runtime=runtime,
        principal=principal,
        interaction_id=interaction_id,
        request=request,
        expected=required_versions(if_match),
        now=clock.now(),
        reminder_lead=_lead(settings),
    )
    response.headers["ETag"] = etag(outcome.interaction.version)
    return outcome


@router.post("/{interaction_id}/cancel")
async def cancel_interaction(
    interaction_id: uuid.UUID,
    request: CancelRequest,
    principal: Writer,
    runtime: CurrentRuntime,
    settings: Settings,
    clock: ClockDep,
    response: Response,
    if_match: IfMatch = None,
) -> Interaction:
    """A planned contact will not take place (its reminder is cancelled). Needs ``If-Match``;
    409 unless the contact is planned."""
    cancelled = await service.cancel_interaction(
        runtime=runtime,
        principal=principal,
        interaction_id=interaction_id,
        request=request,
        expected=required_versions(if_match),
        now=clock.now(),
        reminder_lead=_lead(settings),
    )
    response.headers["ETag"] = etag(cancelled.version)
    return cancelled


@router.get("/{interaction_id}/audit")
async def interaction_audit_trail(
    interaction_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    after: EntryCursor = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditEntry]:
    """Who changed what and when, oldest first; 404 as for the interaction itself."""
    return await service.audit_trail(
        runtime=runtime,
        principal=principal,
        interaction_id=interaction_id,
        after=after,
        limit=limit,
    )
