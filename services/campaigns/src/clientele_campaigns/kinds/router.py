"""HTTP of the kinds of marketing events: everybody signed in reads, administrators write."""

from __future__ import annotations

from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal, require_roles
from clientele_shared.auth.principal import Principal, Role
from clientele_shared.events.schemas.campaigns import EVENT_KIND_CODE
from clientele_shared.http.concurrency import IfMatch, etag, required_versions
from clientele_shared.runtime import CurrentRuntime
from clientele_shared.service_layer import AuditEntry
from fastapi import APIRouter, Depends, Path, Query, Response, status

from clientele_campaigns.kinds import service
from clientele_campaigns.kinds.rules import EventKind, KindDraft, KindPatch

router = APIRouter(prefix="/v1/event-kinds", tags=["event kinds"])
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
Code = Annotated[str, Path(pattern=EVENT_KIND_CODE, description="the kind's code")]


@router.get("")
async def list_kinds(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    include_archived: Annotated[bool, Query(description="list archived kinds too")] = False,
) -> list[EventKind]:
    """The kinds a marketing event may have, by code."""
    return await service.list_kinds(runtime=runtime, include_archived=include_archived)


@router.get("/{code}")
async def get_kind(
    code: Code, principal: CurrentPrincipal, runtime: CurrentRuntime, response: Response
) -> EventKind:
    kind = await service.get_kind(runtime=runtime, code=code)
    response.headers["ETag"] = etag(kind.version)
    return kind


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_kind(
    draft: KindDraft, principal: Admin, runtime: CurrentRuntime, response: Response
) -> EventKind:
    """A new kind (administrators); 409 when the code exists."""
    kind = await service.create_kind(runtime=runtime, principal=principal, draft=draft)
    response.headers["ETag"] = etag(kind.version)
    response.headers["Location"] = f"/v1/event-kinds/{kind.code}"
    return kind


@router.patch("/{code}")
async def update_kind(
    code: Code,
    patch: KindPatch,
    principal: Admin,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> EventKind:
    """Rename or archive a kind (administrators; its code never changes); If-Match required."""
    kind = await service.update_kind(
        runtime=runtime,
        principal=principal,
        code=code,
        patch=patch,
        expected=required_versions(if_match),
    )
    response.headers["ETag"] = etag(kind.version)
    return kind


@router.get("/{code}/audit")
async def kind_audit(
    code: Code,
    principal: Admin,
    runtime: CurrentRuntime,
    after: Annotated[int, Query(ge=0, description="entries after this entry id")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditEntry]:
    """Every change of the kind (administrators): who, when, old and new."""
    return await service.kind_audit(runtime=runtime, code=code, after=after, limit=limit)
