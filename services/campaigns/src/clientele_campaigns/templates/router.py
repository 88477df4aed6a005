"""HTTP of templates: check one before it is used (the fields it needs, its problems); stored
templates, versioned."""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.http.concurrency import IfMatch, etag, required_versions
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Query, Response, status

from clientele_campaigns.templates import service
from clientele_campaigns.templates.rules import (
    StoredTemplate,
    StoredTemplateDraft,
    StoredTemplatePatch,
    TemplateCheck,
    TemplateParts,
    TemplateVersion,
    check,
)

router = APIRouter(prefix="/v1/mail-templates", tags=["mailings"])


@router.post("/check")
async def check_template(parts: TemplateParts, _principal: CurrentPrincipal) -> TemplateCheck:
    """Compile a template in the sandbox: the fields it refers to, those every recipient must
    have, whether it has an unsubscribe link, and every problem with its part and line."""
    return check(parts)


def _tagged(response: Response, template: StoredTemplate) -> StoredTemplate:
    response.headers["ETag"] = etag(template.version)
    return template


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_template(
    draft: StoredTemplateDraft,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
) -> StoredTemplate:
    """A stored template (compiled first: every problem is a 422 naming part and line)."""
    template = await service.create(runtime=runtime, principal=principal, draft=draft)
    response.headers["Location"] = f"/v1/mail-templates/{template.id}"
    return _tagged(response, template)


@router.get("")
async def list_templates(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[StoredTemplate]:
    return await service.list_templates(runtime=runtime, principal=principal, limit=limit)


@router.get("/{template_id}")
async def get_template(
    template_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime, response: Response
) -> StoredTemplate:
    template = await service.get(runtime=runtime, principal=principal, template_id=template_id)
    return _tagged(response, template)


@router.patch("/{template_id}")
async def change_template(
    template_id: uuid.UUID,
    patch: StoredTemplatePatch,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> StoredTemplate:
    """A new version (If-Match); every version is kept."""
    template = await service.change(
        runtime=runtime,
        principal=principal,
        template_id=template_id,
        patch=patch,
        expected=required_versions(if_match),
    )
    return _tagged(response, template)


@router.get("/{template_id}/versions")
async def template_versions(
    template_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> list[TemplateVersion]:
    return await service.versions(runtime=runtime, principal=principal, template_id=template_id)
