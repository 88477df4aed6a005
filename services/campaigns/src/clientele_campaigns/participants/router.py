"""HTTP of an event's participants: add (one or many), list, read, change status and outcome
(one or many), move between stages, history, audit and refused additions."""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.http.concurrency import IfMatch, etag, required_versions
from clientele_shared.runtime import CurrentRuntime
from clientele_shared.service_layer import AuditEntry
from fastapi import APIRouter, Query, Response

from clientele_campaigns.participants import service
from clientele_campaigns.participants.rules import (
    Addition,
    AdditionResult,
    BulkUpdate,
    Move,
    Participant,
    ParticipantPatch,
    ParticipantStatus,
    Refused,
    StageHistoryEntry,
)

router = APIRouter(prefix="/v1/campaigns/{campaign_id}/participants", tags=["participants"])


@router.post("")
async def add_participants(
    campaign_id: uuid.UUID, addition: Addition, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> AdditionResult:
    """Add organizations (and their persons) by hand or in bulk; the refused ones (blocked,
    unknown, already added) come back with the reason and are recorded."""
    return await service.add_participants(
        runtime=runtime, principal=principal, campaign_id=campaign_id, addition=addition
    )


@router.get("")
async def list_participants(
    campaign_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    stage_id: uuid.UUID | None = None,
    status: ParticipantStatus | None = None,
    after: Annotated[
        uuid.UUID | None, Query(description="the last id of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Participant]:
    return await service.list_participants(
        runtime=runtime,
        principal=principal,
        campaign_id=campaign_id,
        stage_id=stage_id,
        status=status,
        after=after,
        limit=limit,
    )


@router.post("/bulk-update")
async def bulk_update(
    campaign_id: uuid.UUID, update: BulkUpdate, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> list[Participant]:
    """One status and/or outcome for many participants (all or none); the changed ones."""
    return await service.bulk_update(
        runtime=runtime, principal=principal, campaign_id=campaign_id, update=update
    )


@router.post("/move")
async def move_participants(
    campaign_id: uuid.UUID, move: Move, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> list[Participant]:
    """Participants to another stage (all or none); the moved ones."""
    return await service.move_participants(
        runtime=runtime, principal=principal, campaign_id=campaign_id, move=move
    )


@router.get("/refusals", tags=["participants"])
async def refusals(
    campaign_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Refused]:
    """Additions refused for this event, oldest first."""
    return await service.refusals(
        runtime=runtime, principal=principal, campaign_id=campaign_id, limit=limit
    )


@router.get("/{participant_id}")
async def get_participant(
    campaign_id: uuid.UUID,
    participant_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
) -> Participant:
    participant = await service.get_participant(
        runtime=runtime, principal=principal, campaign_id=campaign_id, participant_id=participant_id
    )
    response.headers["ETag"] = etag(participant.version)
    return participant


@router.patch("/{participant_id}")
async def update_participant(
    campaign_id: uuid.UUID,
    participant_id: uuid.UUID,
    patch: ParticipantPatch,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Participant:
    """Status and/or outcome (If-Match of the participant: 428 without, 412 stale)."""
    participant = await service.update_participant(
        runtime=runtime,
        principal=principal,
        campaign_id=campaign_id,
        participant_id=participant_id,
        patch=patch,
        expected=required_versions(if_match),
    )
    response.headers["ETag"] = etag(participant.version)
    return participant


@router.get("/{participant_id}/history")
async def participant_history(
    campaign_id: uuid.UUID,
    participant_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
) -> list[StageHistoryEntry]:
    return await service.participant_history(
        runtime=runtime, principal=principal, campaign_id=campaign_id, participant_id=participant_id
    )


@router.get("/{participant_id}/audit")
async def participant_audit(
    campaign_id: uuid.UUID,
    participant_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditEntry]:
    """Every change of the participant: who, when, old and new."""
    return await service.participant_audit(
        runtime=runtime,
        principal=principal,
        campaign_id=campaign_id,
        participant_id=participant_id,
        after=after,
        limit=limit,
    )
