"""HTTP of directions: everybody signed in reads, administrators write."""

from __future__ import annotations

from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal, require_roles
from clientele_shared.auth.principal import Principal, Role
from clientele_shared.http.concurrency import IfMatch, etag, required_versions
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Depends, Response, status

from clientele_directory.directions import service
from clientele_directory.directions.rules import DirectionDraft, DirectionPatch, DirectionRecord

router = APIRouter(prefix="/v1/directions", tags=["directions"])
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]


@router.get("")
async def list_directions(
    principal: CurrentPrincipal, runtime: CurrentRuntime, include_archived: bool = False
) -> list[DirectionRecord]:
    """The company's directions (business lines), by code."""
    return await service.list_directions(runtime=runtime, include_archived=include_archived)


@router.get("/{code}")
async def get_direction(
    code: str, principal: CurrentPrincipal, runtime: CurrentRuntime, response: Response
) -> DirectionRecord:
    direction = await service.get_direction(runtime=runtime, code=code)
    response.headers["ETag"] = etag(direction.version)
    return direction


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_direction(
    draft: DirectionDraft, principal: Admin, runtime: CurrentRuntime, response: Response
) -> DirectionRecord:
    direction = await service.create_direction(runtime=runtime, principal=principal, draft=draft)
    response.headers["ETag"] = etag(1)
    return direction


@router.patch("/{code}")
async def update_direction(
    code: str,
    patch: DirectionPatch,
    principal: Admin,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> DirectionRecord:
    """Rename, describe or archive a direction (its code never changes); If-Match required."""
    direction = await service.update_direction(
        runtime=runtime,
        principal=principal,
        code=code,
        patch=patch,
        expected=required_versions(if_match),
    )
    response.headers["ETag"] = etag(direction.version)
    return direction
