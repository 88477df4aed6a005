"""Directory lists (read from the directory's lists state topics) resolved into an event's
participants at one moment (the members then and what became of each are kept)."""

from __future__ import annotations

import uuid

from clientele_shared.auth.access import writable_directions
from clientele_shared.auth.principal import Principal
from clientele_shared.http.problems import NotFound, invalid_field
from clientele_shared.runtime import ServiceRuntime
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_campaigns.campaigns import service as campaigns
from clientele_campaigns.clients.directory import DirectoryClient, DirectoryList
from clientele_campaigns.lists import queries
from clientele_campaigns.lists.rules import (
    FromList,
    ListAddition,
    Resolution,
    ResolutionMember,
)
from clientele_campaigns.participants import service as participants
from clientele_campaigns.settings import CampaignsSettings


async def add_from_list(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    campaign_id: uuid.UUID,
    request: FromList,
    authorization: str,
) -> ListAddition:
    """The list's members now, added as participants (the same checks as by hand: blocked,
    unknown or unseen organizations refused); the resolution is kept with every member. The
    list must be one the caller sees (another direction's list is refused like one that does
    not exist). A static list's members come from the read model; a dynamic list is resolved
    by the directory as the caller (ADR 36), before the event is locked."""
    async with runtime.sessions() as session:
        campaign = await campaigns.visible_campaign(session, principal, campaign_id)
        writable_directions(principal, campaign.directions)
        kind = await referenced_kind(session, principal, request.list_id, "list_id")
    resolved = None
    if kind == "dynamic":
        resolved = await resolve_dynamic(runtime, request.list_id, authorization)
    async with campaigns.work(runtime, principal) as uow:
        campaign = await campaigns.locked_campaign(uow, principal, campaign_id)
        name = await queries.list_name(uow.session, request.list_id, principal)
        if name is None:
            raise invalid_field("list_id", "no such list", "unknown_reference")
        added, refusals, refused = await participants.add_many(
            uow,
            principal,
            campaign,
            stage_id=request.stage_id,
            source=(
                queries.members(request.list_id)
                if resolved is None
                else queries.given(resolved.members)
            ),
            status=request.status,
        )
        resolution_id = uuid.uuid4()
        await queries.record_resolution(
            uow.session,
            {
                "id": resolution_id,
                "campaign_id": campaign_id,
                "list_id": request.list_id,
                "list_name": name if resolved is None else resolved.name,
                "list_kind": kind,
                "stage_id": request.stage_id or campaign.stages[0].id,
                "members": added + refusals,
                "added": added,
                "refused": refusals,
                "actor_subject": principal.subject,
            },
        )
        resolution = await queries.resolution(uow.session, campaign_id, resolution_id)
        assert resolution is not None
    return ListAddition(refused=refused, resolution=resolution)


async def resolve_dynamic(
    runtime: ServiceRuntime, list_id: uuid.UUID, authorization: str
) -> DirectoryList:
    """A dynamic list's members now, as the directory resolves it for the caller (ADR 36)."""
    settings = runtime.settings
    assert isinstance(settings, CampaignsSettings)
    directory = DirectoryClient(
        settings.directory_url,
        timeout=settings.directory_timeout,
        max_members=settings.dynamic_list_max_members,
    )
    return await directory.resolve(list_id, authorization)


async def list_kind(session: AsyncSession, list_id: uuid.UUID) -> str | None:
    """``static`` or ``dynamic`` (None: no such list)."""
    return await queries.list_kind(session, list_id)


async def referenced_kind(
    session: AsyncSession, principal: Principal, list_id: uuid.UUID, field: str
) -> str:
    """The kind of a list a record refers to in ``field``: one the principal sees (422
    unknown_reference otherwise, never telling another direction's list from none)."""
    kind = await queries.visible_kind(session, principal, list_id)
    if kind is None:
        raise invalid_field(field, "no such list", "unknown_reference")
    return kind


async def list_resolutions(
    *, runtime: ServiceRuntime, principal: Principal, campaign_id: uuid.UUID
) -> list[Resolution]:
    async with runtime.sessions() as session:
        await campaigns.visible_campaign(session, principal, campaign_id)
        return await queries.resolutions(session, campaign_id)


async def resolution_members(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    campaign_id: uuid.UUID,
    resolution_id: uuid.UUID,
    after: uuid.UUID | None,
    limit: int,
) -> list[ResolutionMember]:
    """A page of the members as they were resolved, in organization id order (not those of
    directions the reader does not see: the counts of the resolution include them)."""
    async with runtime.sessions() as session:
        await campaigns.visible_campaign(session, principal, campaign_id)
        if await queries.resolution(session, campaign_id, resolution_id) is None:
            raise NotFound("The list resolution does not exist.")
        return await queries.resolution_members(session, principal, resolution_id, after, limit)


async def members_of(session: AsyncSession, list_id: uuid.UUID) -> list[uuid.UUID] | None:
    """A static list's member organizations now (None: no such list; none for a dynamic one,
    which the directory resolves); a mailing's audience."""
    if await queries.list_name(session, list_id) is None:
        return None
    return list((await session.scalars(queries.members(list_id))).all())
