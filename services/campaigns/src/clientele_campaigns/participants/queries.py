"""SQL of participants, their stage history and refused additions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from clientele_shared.bulk import COPY_FROM, Copy
from clientele_shared.directory_read_models import any_of
from sqlalchemy import Select, Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_campaigns.participants.rules import (
    Participant,
    Refused,
    StageHistoryEntry,
    Who,
)
from clientele_campaigns.tables import participant_stage_history, participants, refusals


def _live(campaign_id: uuid.UUID) -> Select[Any]:
    return select(participants).where(
        participants.c.campaign_id == campaign_id, ~participants.c.client_hidden
    )


async def present(
    session: AsyncSession, campaign_id: uuid.UUID, entries: Sequence[Who]
) -> set[Who]:
    """Which of ``entries`` are already participants of the event (hidden ones too)."""
    if not entries:
        return set()
    rows = await session.execute(
        select(participants.c.organization_id, participants.c.person_id).where(
            participants.c.campaign_id == campaign_id,
            any_of(participants.c.organization_id, {e.organization_id for e in entries}),
        )
    )
    found = {Who(organization_id=org, person_id=person) for org, person in rows}
    return found & set(entries)


async def insert_participants(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await _write(session, participants, rows)


async def record_moves(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Entries of the append-only stage history."""
    await _write(session, participant_stage_history, rows)


async def _write(session: AsyncSession, table: Table, rows: list[dict[str, Any]]) -> None:
    """New rows: a multi-row insert, or one COPY for many (a list may add 100,000)."""
    if len(rows) >= COPY_FROM:
        await Copy.of(table, rows).write(session)
    elif rows:
        await session.execute(insert(table), rows)


async def record_refusals(
    session: AsyncSession, campaign_id: uuid.UUID, refused: list[Refused], subject: str
) -> None:
    if refused:
        await session.execute(
            insert(refusals),
            [
                {**entry.model_dump(), "campaign_id": campaign_id, "actor_subject": subject}
                for entry in refused
            ],
        )


async def load(
    session: AsyncSession, campaign_id: uuid.UUID, participant_id: uuid.UUID
) -> Participant | None:
    row = (
        (await session.execute(_live(campaign_id).where(participants.c.id == participant_id)))
        .mappings()
        .first()
    )
    return Participant.model_validate(dict(row)) if row else None


async def find(session: AsyncSession, campaign_id: uuid.UUID, who: Who) -> Participant | None:
    """The live participant of the event that is ``who``."""
    person = participants.c.person_id
    stmt = _live(campaign_id).where(
        participants.c.organization_id == who.organization_id,
        person.is_(None) if who.person_id is None else person == who.person_id,
    )
    row = (await session.execute(stmt)).mappings().first()
    return Participant.model_validate(dict(row)) if row else None


async def locked(
    session: AsyncSession, campaign_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[Participant]:
    """The live participants of the event among ``ids``, locked in id order (no deadlocks)."""
    rows = (
        await session.execute(
            _live(campaign_id)
            .where(participants.c.id.in_(sorted(set(ids))))
            .order_by(participants.c.id)
            .with_for_update()
        )
    ).mappings()
    return [Participant.model_validate(dict(row)) for row in rows]


async def list_live(
    session: AsyncSession,
    campaign_id: uuid.UUID,
    *,
    stage_id: uuid.UUID | None,
    status: str | None,
    after: uuid.UUID | None,
    limit: int,
) -> list[Participant]:
    stmt = _live(campaign_id)
    if stage_id is not None:
        stmt = stmt.where(participants.c.stage_id == stage_id)
    if status is not None:
        stmt = stmt.where(participants.c.status == status)
    if after is not None:
        stmt = stmt.where(participants.c.id > after)
    rows = (await session.execute(stmt.order_by(participants.c.id).limit(limit))).mappings()
    return [Participant.model_validate(dict(row)) for row in rows]


async def history(session: AsyncSession, participant_id: uuid.UUID) -> list[StageHistoryEntry]:
    rows = (
        await session.execute(
            select(participant_stage_history)
            .where(participant_stage_history.c.participant_id == participant_id)
            .order_by(participant_stage_history.c.id)
        )
    ).mappings()
    return [StageHistoryEntry.model_validate(dict(row)) for row in rows]


async def refused(session: AsyncSession, campaign_id: uuid.UUID, limit: int) -> list[Refused]:
    rows = (
        await session.execute(
            select(refusals)
            .where(refusals.c.campaign_id == campaign_id)
            .order_by(refusals.c.id)
            .limit(limit)
        )
    ).mappings()
    return [Refused.model_validate(dict(row)) for row in rows]


# --- following the directory ------------------------------------------------------------------


async def of_client(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID | None = None,
    person_id: uuid.UUID | None = None,
) -> list[Participant]:
    """Every participant of an organization or person (hidden ones too), locked in id order."""
    column = participants.c.organization_id if organization_id else participants.c.person_id
    rows = (
        await session.execute(
            select(participants)
            .where(column == (organization_id or person_id))
            .order_by(participants.c.id)
            .with_for_update()
        )
    ).mappings()
    return [Participant.model_validate(dict(row)) for row in rows]


async def set_flags(session: AsyncSession, flags: list[dict[str, Any]]) -> None:
    """Set ``client_hidden`` and ``client_blocked`` (rows of ``pid``, ``hidden``, ``blocked``)."""
    if flags:
        await session.execute(
            update(participants)
            .where(participants.c.id == bindparam("pid"))
            .values(client_hidden=bindparam("hidden"), client_blocked=bindparam("blocked")),
            flags,
        )
