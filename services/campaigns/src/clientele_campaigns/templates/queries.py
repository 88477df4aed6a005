"""SQL of stored templates and their kept versions."""

from __future__ import annotations

import uuid
from typing import Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_campaigns.tables import mail_template_versions, mail_templates
from clientele_campaigns.templates.rules import StoredTemplate, TemplateVersion


async def insert_template(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(insert(mail_templates).values(**values))


async def keep_version(
    session: AsyncSession, template_id: uuid.UUID, version: int, values: dict[str, Any], by: str
) -> None:
    """A version as saved (every version is kept: a mailing names the one it was made from)."""
    await session.execute(
        insert(mail_template_versions).values(
            template_id=template_id,
            version=version,
            name=values["name"],
            subject=values["subject"],
            html=values["html"],
            text=values["text"],
            saved_by=by,
        )
    )


async def load(session: AsyncSession, template_id: uuid.UUID) -> StoredTemplate | None:
    row = (
        (await session.execute(select(mail_templates).where(mail_templates.c.id == template_id)))
        .mappings()
        .first()
    )
    return None if row is None else StoredTemplate.model_validate(row)


async def list_visible(
    session: AsyncSession, principal: Principal, limit: int
) -> list[StoredTemplate]:
    rows = await session.execute(
        select(mail_templates)
        .where(visible_to(principal, mail_templates.c.directions))
        .order_by(mail_templates.c.name, mail_templates.c.id)
        .limit(limit)
    )
    return [StoredTemplate.model_validate(row) for row in rows.mappings()]


async def versions(session: AsyncSession, template_id: uuid.UUID) -> list[TemplateVersion]:
    rows = await session.execute(
        select(mail_template_versions)
        .where(mail_template_versions.c.template_id == template_id)
        .order_by(mail_template_versions.c.version)
    )
    return [TemplateVersion.model_validate(row) for row in rows.mappings()]
