"""HTTP of custom attribute definitions (administrators write, everybody reads)."""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal, require_roles
from clientele_shared.auth.principal import Principal, Role
from clientele_shared.http.concurrency import IfMatch, etag, required_versions
from clientele_shared.http.params import EntryCursor
from clientele_shared.runtime import CurrentRuntime
from clientele_shared.service_layer import AuditEntry
from fastapi import APIRouter, Depends, Query, Response, status

from clientele_directory.attributes import service
from clientele_directory.attributes.rules import (
    AttributeDefinition,
    AttributeDefinitionDraft,
    AttributeDefinitionPatch,
    EntityKind,
)

router = APIRouter(prefix="/v1/attributes", tags=["custom attributes"])
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_definition(
    draft: AttributeDefinitionDraft, principal: Admin, runtime: CurrentRuntime, response: Response
) -> AttributeDefinition:
    """Define an attribute (administrators). Its key, kind and type never change; a key stays
    taken by an archived attribute (restore it instead)."""
    definition = await service.create_definition(runtime=runtime, principal=principal, draft=draft)
    response.headers["ETag"] = etag(1)
    response.headers["Location"] = f"/v1/attributes/{definition.id}"
    return definition


@router.get("")
async def list_definitions(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    entity_kind: EntityKind | None = None,
    include_archived: Annotated[bool, Query(description="archived ones too")] = False,
) -> list[AttributeDefinition]:
    """The attributes records may carry (every signed-in user reads them)."""
    return await service.list_definitions(
        runtime=runtime, entity_kind=entity_kind, include_archived=include_archived
    )


@router.get("/{definition_id}")
async def get_definition(
    definition_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
) -> AttributeDefinition:
    definition = await service.get_definition(runtime=runtime, definition_id=definition_id)
    response.headers["ETag"] = etag(definition.version)
    return definition


@router.patch("/{definition_id}")
async def update_definition(
    definition_id: uuid.UUID,
    patch: AttributeDefinitionPatch,
    principal: Admin,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> AttributeDefinition:
    """Change the label, description, required flag or options, or archive/restore
    (``archived``); If-Match required."""
    archived = patch.archived
    definition = await service.change_definition(
        runtime=runtime,
        principal=principal,
        definition_id=definition_id,
        patch=patch,
        expected=required_versions(if_match),
        action="updated" if archived is None else ("archived" if archived else "restored"),
    )
    response.headers["ETag"] = etag(definition.version)
    return definition


@router.delete("/{definition_id}")
async def archive_definition(
    definition_id: uuid.UUID,
    principal: Admin,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> AttributeDefinition:
    """Remove an attribute: it is archived, never dropped. Records keep their values (read,
    filtered on, exported); no new values are taken until it is restored."""
    definition = await service.change_definition(
        runtime=runtime,
        principal=principal,
        definition_id=definition_id,
        patch=AttributeDefinitionPatch(archived=True),
        expected=required_versions(if_match),
        action="archived",
    )
    response.headers["ETag"] = etag(definition.version)
    return definition


@router.get("/{definition_id}/audit")
async def definition_audit(
    definition_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    after: EntryCursor = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditEntry]:
    return await service.definition_audit(
        runtime=runtime, definition_id=definition_id, after=after, limit=limit
    )
