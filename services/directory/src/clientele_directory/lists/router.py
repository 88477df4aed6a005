"""HTTP of lists of organizations: static (members by hand, by a filter's result, by an uploaded
file) and dynamic (a saved filter evaluated on read)."""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.http.concurrency import IfMatch, etag, required_versions
from clientele_shared.http.params import EntryCursor
from clientele_shared.runtime import CurrentRuntime
from clientele_shared.service_layer import AuditEntry
from fastapi import APIRouter, Form, Query, Response, UploadFile, status

from clientele_directory.lists import service
from clientele_directory.lists.rules import (
    ListDraft,
    ListPatch,
    MembershipChange,
    MembershipRequest,
    OrganizationList,
)
from clientele_directory.search.rules import OrganizationSort
from clientele_directory.search.schemas import OrganizationPage

router = APIRouter(prefix="/v1/lists", tags=["lists"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_list(
    draft: ListDraft, principal: CurrentPrincipal, runtime: CurrentRuntime, response: Response
) -> OrganizationList:
    """A static or dynamic list in directions the caller works in (403 outside them)."""
    found = await service.create_list(runtime=runtime, principal=principal, draft=draft)
    response.headers["ETag"] = etag(found.version)
    response.headers["Location"] = f"/v1/lists/{found.id}"
    return found


@router.get("")
async def list_lists(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[OrganizationList]:
    """The lists the caller may see, by name."""
    return await service.list_lists(runtime=runtime, principal=principal, limit=limit)


@router.get("/{list_id}")
async def get_list(
    list_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime, response: Response
) -> OrganizationList:
    found = await service.get_list(runtime=runtime, principal=principal, list_id=list_id)
    response.headers["ETag"] = etag(found.version)
    return found


@router.patch("/{list_id}")
async def update_list(
    list_id: uuid.UUID,
    patch: ListPatch,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> OrganizationList:
    """Rename, describe, change a dynamic list's filter or move the list (If-Match)."""
    found = await service.update_list(
        runtime=runtime,
        principal=principal,
        list_id=list_id,
        patch=patch,
        expected=required_versions(if_match),
    )
    response.headers["ETag"] = etag(found.version)
    return found


@router.delete("/{list_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_list(
    list_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> None:
    """Soft-delete a list (its members are kept with it); If-Match required."""
    version = await service.delete_list(
        runtime=runtime, principal=principal, list_id=list_id, expected=required_versions(if_match)
    )
    response.headers["ETag"] = etag(version)


@router.get("/{list_id}/audit")
async def list_audit(
    list_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    after: EntryCursor = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditEntry]:
    """The list's changes; membership changes name only the organizations the caller sees
    (an entry that moved none of them is left out: a shared list shows no other direction's
    members, nor who added them)."""
    return await service.list_audit(
        runtime=runtime, principal=principal, list_id=list_id, after=after, limit=limit
    )


@router.get("/{list_id}/members")
async def list_members(
    list_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    sort: OrganizationSort = OrganizationSort.NAME,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> OrganizationPage:
    """The members the caller may see, a page at a time (a dynamic list's filter is evaluated
    now)."""
    return await service.list_members(
        runtime=runtime, principal=principal, list_id=list_id, sort=sort, limit=limit, cursor=cursor
    )


@router.post("/{list_id}/members")
async def add_members(
    list_id: uuid.UUID,
    request: MembershipRequest,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
) -> MembershipChange:
    """Add organizations to a static list by id, or every organization a filter finds now.
    Organizations the caller may not see are never added (reported as not found)."""
    return await service.add_members(
        runtime=runtime, principal=principal, list_id=list_id, request=request
    )


@router.post("/{list_id}/members/remove")
async def remove_members(
    list_id: uuid.UUID,
    request: MembershipRequest,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
) -> MembershipChange:
    """Remove organizations from a static list (by id; only members the caller may see)."""
    return await service.remove_members(
        runtime=runtime, principal=principal, list_id=list_id, request=request
    )


@router.post("/{list_id}/members/upload")
async def upload_members(
    list_id: uuid.UUID,
    file: UploadFile,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    column: Annotated[
        str | None, Form(description="the header of the column to read (default: INN or id)")
    ] = None,
) -> MembershipChange:
    """Add the organizations an .xlsx or CSV file names, by INN or by id (the first sheet; a
    header row naming the column). Rows naming no organization the caller sees are reported
    by row number; a broken file is a 422 problem and adds nothing."""
    return await service.upload_members(
        runtime=runtime,
        principal=principal,
        list_id=list_id,
        file=file.file,
        filename=file.filename,
        column=column,
    )
