"""SQL of the client card and summary.

A summary's body is cached in Redis under the client's *summary generation*, a counter bumped in
the transaction of every change the summary shows (interactions written here, person and
employment events, and the deal, campaign and ERP events once those services publish them). The
body and the generation are read in one REPEATABLE READ snapshot, so a cached body always matches
its generation, and a change makes the next call miss: invalidation by event, without races.
The card is read live on every call (it decides visibility), so card events need no bump.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from clientele_shared.observability import get_logger
from sqlalchemy import Row, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_interactions.clients.rules import (
    CampaignLine,
    ClientCard,
    DealLine,
    ErpDocumentLine,
    Person,
    SummaryBody,
    full_name,
)
from clientele_interactions.log.schemas import Interaction
from clientele_interactions.tables import (
    client_campaigns,
    client_cards,
    client_deals,
    client_erp_documents,
    employments,
    interactions,
    persons,
    summary_generations,
)

log = get_logger(__name__)
ERP_DOCUMENTS_SHOWN = 20


async def card_and_generation(
    session: AsyncSession, organization_id: uuid.UUID
) -> tuple[ClientCard, int] | None:
    """The live card and its summary generation; a merged organization's survivor's; None
    when unknown or deleted."""

    async def read(key: uuid.UUID) -> Row[Any] | None:
        return (
            await session.execute(
                select(
                    client_cards, func.coalesce(summary_generations.c.generation, 0).label("gen")
                )
                .outerjoin(
                    summary_generations,
                    summary_generations.c.organization_id == client_cards.c.organization_id,
                )
                .where(client_cards.c.organization_id == key)
            )
        ).first()

    row = await read(organization_id)
    if row is not None and row.merged_into is not None:
        row = await read(row.merged_into)
    if row is None or row.deleted:
        return None
    return ClientCard.model_validate(row, from_attributes=True), int(row.gen)


async def overdue_count(session: AsyncSession, organization_id: uuid.UUID, now: datetime) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(interactions)
            .where(
                interactions.c.organization_id == organization_id,
                interactions.c.status == "planned",
                interactions.c.due_at <= now,
            )
        )
        or 0
    )


async def people_at(session: AsyncSession, organization_id: uuid.UUID, today: date) -> list[Person]:
    rows = (
        await session.execute(
            select(
                persons,
                employments.c.position,
                employments.c.department,
                employments.c.emails.label("work_emails"),
                employments.c.phones.label("work_phones"),
            )
            .join(employments, employments.c.person_id == persons.c.person_id)
            .where(
                employments.c.organization_id == organization_id,
                ~employments.c.deleted,
                ~persons.c.deleted,
                or_(employments.c.until.is_(None), employments.c.until >= today),
                or_(employments.c.since.is_(None), employments.c.since <= today),
            )
            .order_by(persons.c.last_name, persons.c.first_name, persons.c.person_id)
        )
    ).all()
    return [
        Person(
            person_id=row.person_id,
            full_name=full_name(dict(row._mapping)),
            last_name=row.last_name,
            first_name=row.first_name,
            middle_name=row.middle_name,
            position=row.position,
            department=row.department,
            emails=list(dict.fromkeys([*row.work_emails, *row.emails])),
            phones=[*row.work_phones, *row.phones],
            organization_id=organization_id,
            blocked=row.blocked,
        )
        for row in rows
    ]


async def build_body(
    session: AsyncSession, organization_id: uuid.UUID, *, last: int, upcoming: int, now: datetime
) -> SummaryBody:
    done = (
        await session.execute(
            select(interactions)
            .where(
                interactions.c.organization_id == organization_id, interactions.c.status == "done"
            )
            .order_by(interactions.c.occurred_at.desc(), interactions.c.id)
            .limit(last)
        )
    ).all()
    planned = (
        await session.execute(
            select(interactions)
            .where(
                interactions.c.organization_id == organization_id,
                interactions.c.status == "planned",
            )
            .order_by(interactions.c.due_at, interactions.c.id)
            .limit(upcoming)
        )
    ).all()
    deals = (
        await session.execute(
            select(client_deals)
            .where(
                client_deals.c.organization_id == organization_id, client_deals.c.status == "open"
            )
            .order_by(client_deals.c.updated_at.desc())
        )
    ).all()
    campaigns = (
        await session.execute(
            select(client_campaigns)
            .where(client_campaigns.c.organization_id == organization_id)
            .order_by(client_campaigns.c.occurred_at.desc().nulls_last())
        )
    ).all()
    documents = (
        await session.execute(
            select(client_erp_documents)
            .where(client_erp_documents.c.organization_id == organization_id)
            .order_by(client_erp_documents.c.issued_on.desc().nulls_last())
            .limit(ERP_DOCUMENTS_SHOWN)
        )
    ).all()
    return SummaryBody(
        people=await people_at(session, organization_id, now.date()),
        last_interactions=[Interaction.model_validate(r, from_attributes=True) for r in done],
        next_planned=[Interaction.model_validate(r, from_attributes=True) for r in planned],
        open_deals=[DealLine.model_validate(r, from_attributes=True) for r in deals],
        campaigns=[CampaignLine.model_validate(r, from_attributes=True) for r in campaigns],
        erp_documents=[ErpDocumentLine.model_validate(r, from_attributes=True) for r in documents],
        built_at=now,
    )
