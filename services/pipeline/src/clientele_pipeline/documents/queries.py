"""SQL of ERP documents."""

from __future__ import annotations

import uuid
from typing import Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from sqlalchemy import literal_column, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_pipeline.documents.rules import Document
from clientele_pipeline.tables import erp_documents, organizations


async def organizations_with_inn(session: AsyncSession, inn: str) -> list[uuid.UUID]:
    """The live clients with this INN (merged ones are not: their survivor is)."""
    return list(
        (
            await session.scalars(
                select(organizations.c.organization_id)
                .where(
                    organizations.c.inn == inn,
                    ~organizations.c.deleted,
                    organizations.c.merged_into.is_(None),
                )
                .order_by(organizations.c.organization_id)
                .limit(10)
            )
        ).all()
    )


async def upsert(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Store a document, or its correction (same kind and ERP id); whether it is new."""
    stmt = insert(erp_documents).values(id=uuid.uuid4(), **values)
    changed = {name: stmt.excluded[name] for name in values if name not in ("kind", "document_id")}
    inserted: bool | None = await session.scalar(
        stmt.on_conflict_do_update(
            constraint="uq_erp_documents_kind_document",
            set_={
                **changed,
                "revision": erp_documents.c.revision + 1,
                "updated_at": literal_column("now()"),
            },
        ).returning(literal_column("xmax = 0").label("inserted"))
    )
    return bool(inserted)


async def of_deal(session: AsyncSession, deal_id: uuid.UUID) -> list[Document]:
    rows = (
        await session.execute(
            select(erp_documents)
            .where(erp_documents.c.deal_id == deal_id)
            .order_by(erp_documents.c.document_date, erp_documents.c.received_at)
        )
    ).mappings()
    return [Document.model_validate(dict(row)) for row in rows]


async def of_organization(
    session: AsyncSession, principal: Principal, organization_id: uuid.UUID
) -> list[Document]:
    """The client's documents (and those of clients merged into it) in the caller's
    directions: a document on a deal of another direction is not shown."""
    merged = select(organizations.c.organization_id).where(
        organizations.c.merged_into == organization_id
    )
    rows = (
        await session.execute(
            select(erp_documents)
            .where(
                or_(
                    erp_documents.c.organization_id == organization_id,
                    erp_documents.c.organization_id.in_(merged),
                ),
                visible_to(principal, erp_documents.c.directions),
            )
            .order_by(erp_documents.c.document_date, erp_documents.c.received_at)
        )
    ).mappings()
    return [Document.model_validate(dict(row)) for row in rows]
