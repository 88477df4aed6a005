"""Stored templates: create, change (a new version each time, every one kept), read, list;
and the template a mailing is made from (visible to its author, compiled)."""

from __future__ import annotations

import uuid
from typing import Any

from clientele_shared.auth.access import ensure_visible, writable_directions
from clientele_shared.auth.principal import Principal
from clientele_shared.http.problems import NotFound, invalid, invalid_field
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import Versioned, write_version
from clientele_shared.templating import TemplateInvalid
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_campaigns.campaigns import service as campaigns
from clientele_campaigns.tables import mail_templates
from clientele_campaigns.templates import queries
from clientele_campaigns.templates.rules import (
    StoredTemplate,
    StoredTemplateDraft,
    StoredTemplatePatch,
    TemplateParts,
    TemplateVersion,
    compile_parts,
    problems_of,
)

KIND = "mail_template"
TEMPLATE = Versioned(mail_templates, KIND)
_NOT_FOUND = "The template does not exist."


def _compiled(parts: TemplateParts) -> None:
    try:
        compile_parts(parts)
    except TemplateInvalid as problems:
        raise invalid(problems_of(problems)) from None


def _values(name: str, parts: TemplateParts) -> dict[str, Any]:
    return {"name": name, "subject": parts.subject, "html": parts.html, "text": parts.text}


async def visible_template(
    session: AsyncSession, principal: Principal, template_id: uuid.UUID
) -> StoredTemplate:
    template = await queries.load(session, template_id)
    if template is None:
        raise NotFound(_NOT_FOUND)
    ensure_visible(principal, template.directions, _NOT_FOUND)
    return template


async def create(
    *, runtime: ServiceRuntime, principal: Principal, draft: StoredTemplateDraft
) -> StoredTemplate:
    writable_directions(principal, draft.directions)
    _compiled(draft.template)
    template_id = uuid.uuid4()
    values = _values(draft.name, draft.template)
    async with campaigns.work(runtime, principal) as uow:
        await queries.insert_template(
            uow.session,
            {
                **values,
                "id": template_id,
                "directions": draft.directions,
                "version": 1,
                "created_by": principal.subject,
                "updated_by": principal.subject,
            },
        )
        await queries.keep_version(uow.session, template_id, 1, values, principal.subject)
        await uow.audit(
            kind=KIND,
            entity_id=template_id,
            action="created",
            version=1,
            changes={k: {"old": None, "new": v} for k, v in values.items()},
        )
    return await get(runtime=runtime, principal=principal, template_id=template_id)


async def get(
    *, runtime: ServiceRuntime, principal: Principal, template_id: uuid.UUID
) -> StoredTemplate:
    async with runtime.sessions() as session:
        return await visible_template(session, principal, template_id)


async def list_templates(
    *, runtime: ServiceRuntime, principal: Principal, limit: int
) -> list[StoredTemplate]:
    async with runtime.sessions() as session:
        return await queries.list_visible(session, principal, limit)


async def change(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    template_id: uuid.UUID,
    patch: StoredTemplatePatch,
    expected: set[int],
) -> StoredTemplate:
    """A new version (If-Match); mailings made from an earlier one keep theirs."""
    async with campaigns.work(runtime, principal) as uow:
        locked = await TEMPLATE.lock(uow.session, template_id)
        if locked is None:
            raise NotFound(_NOT_FOUND)
        current = StoredTemplate.model_validate(locked)
        ensure_visible(principal, current.directions, _NOT_FOUND)
        writable_directions(principal, current.directions)
        parts = patch.template or current.parts
        _compiled(parts)
        old, new = _values(current.name, current.parts), _values(patch.name or current.name, parts)
        version = await write_version(
            uow,
            TEMPLATE,
            template_id,
            current=current.version,
            expected=expected,
            values=new,
            action="changed",
            changes={k: {"old": old[k], "new": v} for k, v in new.items() if old[k] != v},
        )
        await queries.keep_version(uow.session, template_id, version, new, principal.subject)
    return await get(runtime=runtime, principal=principal, template_id=template_id)


async def versions(
    *, runtime: ServiceRuntime, principal: Principal, template_id: uuid.UUID
) -> list[TemplateVersion]:
    async with runtime.sessions() as session:
        await visible_template(session, principal, template_id)
        return await queries.versions(session, template_id)


async def for_mailing(
    session: AsyncSession, principal: Principal, template_id: uuid.UUID
) -> StoredTemplate:
    """The stored template a mailing is made from (422 when the caller cannot see it)."""
    try:
        return await visible_template(session, principal, template_id)
    except NotFound:
        raise invalid_field("template_id", "no such template", "unknown_reference") from None
