"""HTTP of organizations: create, read, list, patch (If-Match), soft delete, restore, audit."""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal, Writer
from clientele_shared.http.concurrency import IfMatch, etag, required_versions
from clientele_shared.http.params import EntryCursor
from clientele_shared.runtime import CurrentRuntime
from clientele_shared.service_layer import AuditEntry
from fastapi import APIRouter, Query, Request, Response, status

from clientele_directory.organizations import service
from clientele_directory.organizations.rules import (
    Organization,
    OrganizationDraft,
    OrganizationPatch,
)

router = APIRouter(prefix="/v1/organizations", tags=["organizations"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_organization(
    draft: OrganizationDraft,
    principal: Writer,
    runtime: CurrentRuntime,
    response: Response,
) -> Organization:
    """Register an organization in directions the caller works in (403 outside them)."""
    org = await service.create_organization(runtime=runtime, principal=principal, draft=draft)
    response.headers["ETag"] = etag(org.version)
    response.headers["Location"] = f"/v1/organizations/{org.id}"
    return org


@router.get("/{org_id}")
async def get_organization(
    org_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    include_deleted: Annotated[bool, Query(description="also answer for a deleted one")] = False,
) -> Organization:
    """One organization; 404 when it does not exist, is deleted, or lies outside the caller's
    directions."""
    org = await service.get_organization(
        runtime=runtime, principal=principal, org_id=org_id, include_deleted=include_deleted
    )
    response.headers["ETag"] = etag(org.version)
    return org


@router.get("")
async def list_organizations(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    deleted: Annotated[bool, Query(description="list the deleted ones instead")] = False,
    cursor: Annotated[
        str | None,
        Query(max_length=2000, description="the next page: the cursor of the Link header"),
    ] = None,
) -> list[Organization]:
    """Organizations in the caller's directions, by legal name, ``limit`` at a time.

    When more follow, the ``Link`` header (``rel="next"``) names the next page and
    ``X-Next-Cursor`` its cursor; a cursor of another listing (``deleted``) is a 422.
    """
    page, next_cursor = await service.list_organizations(
        runtime=runtime, principal=principal, deleted=deleted, limit=limit, cursor=cursor
    )
    if next_cursor is not None:
        following = request.url.include_query_params(cursor=next_cursor)
        response.headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
        response.headers["X-Next-Cursor"] = next_cursor
    return page


@router.patch("/{org_id}")
async def update_organization(
    org_id: uuid.UUID,
    patch: OrganizationPatch,
    principal: Writer,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Organization:
    """Change some fields (JSON merge patch: fields present are set, ``null`` clears).

    Needs ``If-Match`` with the ETag read (428 without, 412 when stale). Moving the organization
    into or out of a direction needs membership of that direction (403). A patch that changes
    nothing answers the record as it is, without a new version.
    """
    org = await service.update_organization(
        runtime=runtime,
        principal=principal,
        org_id=org_id,
        patch=patch,
        expected=required_versions(if_match),
    )
    response.headers["ETag"] = etag(org.version)
    return org


@router.delete("/{org_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_organization(
    org_id: uuid.UUID,
    principal: Writer,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> None:
    """Soft-delete (restorable); needs If-Match and membership of all its directions."""
    version = await service.delete_organization(
        runtime=runtime, principal=principal, org_id=org_id, expected=required_versions(if_match)
    )
    response.headers["ETag"] = etag(version)


@router.post("/{org_id}/restore")
async def restore_organization(
    org_id: uuid.UUID,
    principal: Writer,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Organization:
    """Bring a deleted organization back; needs If-Match with the deleted version's ETag."""
    org = await service.restore_organization(
        runtime=runtime, principal=principal, org_id=org_id, expected=required_versions(if_match)
    )
    response.headers["ETag"] = etag(org.version)
    return org


@router.get("/{org_id}/audit")
async def organization_audit(
    org_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    after: EntryCursor = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditEntry]:
    """Every change of the organization (deleted ones too): who, when, what, old and new."""
    return await service.organization_audit(
        runtime=runtime, principal=principal, org_id=org_id, after=after, limit=limit
    )
