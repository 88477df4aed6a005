"""SQL of participants, their stage history and refused additions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from clientele_shared.bulk import COPY_FROM, Copy
from clientele_shared.directory_read_models import any_of
from clientele_shared.events.envelope import Actor
from clientele_shared.observability import current_correlation_id
from sqlalchemy import (
    Column,
    MetaData,
    Select,
    String,
    Table,
    Text,
    Uuid,
    bindparam,
    case,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_campaigns.participants.rules import (
    Participant,
    Refused,
    StageHistoryEntry,
    Who,
)
from clientele_campaigns.tables import (
    audit_log,
    directory,
    participant_stage_history,
    participants,
    refusals,
)


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


async def refused(
    session: AsyncSession, principal: Principal, campaign_id: uuid.UUID, limit: int
) -> list[Refused]:
    """The event's refusals, oldest first, but those naming an organization or person of
    directions the reader does not see (ADR 68)."""
    rows = (
        await session.execute(
            select(refusals)
            .where(
                refusals.c.campaign_id == campaign_id,
                directory.may_name(principal, refusals.c.organization_id, refusals.c.person_id),
            )
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


# --- set-based addition of many organizations (a list of 100,000) ----------------------------

candidates = Table(
    "addition_candidates",
    MetaData(),
    Column("organization_id", Uuid, primary_key=True),
    Column("outcome", String(40), nullable=False),
    Column("participant_id", Uuid),
)
"""A temporary table (dropped at commit, never in ``tables.py``'s metadata): the organizations
one addition considers, what becomes of each, and the new participant's id of an added one."""


async def classify_candidates(
    session: AsyncSession,
    principal: Principal,
    campaign_id: uuid.UUID,
    source: Select[Any],
) -> None:
    """Fill ``addition_candidates`` from ``source`` (a select of ``organization_id``s) with the
    rules of an addition by hand, in one statement: unknown, deleted or unseen organizations
    refused ``unknown_organization``, blocked ones ``blocked``, those in the event already
    ``already_added``, the rest ``added`` with a new participant id."""
    await session.execute(
        text(
            "CREATE TEMPORARY TABLE addition_candidates (organization_id uuid PRIMARY KEY,"
            " outcome varchar(40) NOT NULL, participant_id uuid) ON COMMIT DROP"
        )
    )
    organizations = directory.organizations
    wanted = source.subquery("wanted")
    present = (
        select(participants.c.id)
        .where(
            participants.c.campaign_id == campaign_id,
            participants.c.organization_id == wanted.c.organization_id,
            participants.c.person_id.is_(None),
        )
        .exists()
    )
    outcome = case(
        (
            or_(
                organizations.c.organization_id.is_(None),
                organizations.c.deleted,
                ~visible_to(principal, organizations.c.directions),
            ),
            "unknown_organization",
        ),
        (organizations.c.blocked, "blocked"),
        (present, "already_added"),
        else_="added",
    )
    judged = (
        select(wanted.c.organization_id, outcome.label("outcome"))
        .select_from(
            wanted.outerjoin(
                organizations, organizations.c.organization_id == wanted.c.organization_id
            )
        )
        .subquery("judged")
    )
    await session.execute(
        insert(candidates).from_select(
            ["organization_id", "outcome", "participant_id"],
            select(
                judged.c.organization_id,
                judged.c.outcome,
                case((judged.c.outcome == "added", func.gen_random_uuid())),
            ),
        )
    )


async def insert_candidates(
    session: AsyncSession,
    campaign_id: uuid.UUID,
    stage_id: uuid.UUID,
    status: str,
    actor: Actor,
    actor_name: str | None,
) -> None:
    """The added candidates as participants with their first stage-history entries and audit
    entries (the same as an addition by hand writes), and the refused ones' refusals: each one
    INSERT ... SELECT."""
    added = select(candidates).where(candidates.c.outcome == "added").subquery("added")
    subject = actor.subject
    await session.execute(
        insert(participants).from_select(
            [
                "id",
                "campaign_id",
                "stage_id",
                "organization_id",
                "status",
                "version",
                "created_by",
                "updated_by",
            ],
            select(
                added.c.participant_id,
                literal(campaign_id),
                literal(stage_id),
                added.c.organization_id,
                literal(status),
                literal(1),
                literal(subject),
                literal(subject),
            ),
        )
    )
    await session.execute(
        insert(participant_stage_history).from_select(
            ["participant_id", "campaign_id", "to_stage_id", "status", "actor_subject"],
            select(
                added.c.participant_id,
                literal(campaign_id),
                literal(stage_id),
                literal(status),
                literal(subject),
            ),
        )
    )

    def change(new: str | None) -> dict[str, str | None]:
        return {"old": None, "new": new}

    template = {  # the changes of an addition by hand; only the organization differs per row
        "campaign_id": change(str(campaign_id)),
        "stage_id": change(str(stage_id)),
        "organization_id": change(None),
        "person_id": change(None),
        "status": change(status),
    }
    await session.execute(
        insert(audit_log).from_select(
            [
                "entity_kind",
                "entity_id",
                "version",
                "action",
                "actor_subject",
                "actor_kind",
                "actor_name",
                "correlation_id",
                "changes",
            ],
            select(
                literal("participant"),
                added.c.participant_id,
                literal(1),
                literal("added"),
                literal(subject),
                literal(actor.kind),
                literal(actor_name, String),
                literal(current_correlation_id()),
                func.jsonb_set(
                    literal(template, JSONB),
                    literal(["organization_id", "new"], ARRAY(Text)),
                    func.to_jsonb(cast(added.c.organization_id, Text)),
                ),
            ),
        )
    )
    await session.execute(
        insert(refusals).from_select(
            ["campaign_id", "organization_id", "reason", "actor_subject"],
            select(
                literal(campaign_id),
                candidates.c.organization_id,
                candidates.c.outcome,
                literal(subject),
            ).where(candidates.c.outcome != "added"),
        )
    )


async def candidate_outcomes(
    session: AsyncSession, principal: Principal, batch: int
) -> tuple[int, list[str], int, list[Refused]]:
    """How many candidates were added, their ``participants.added`` entries as JSON arrays of
    at most ``batch`` (built by the database: 100,000 need no Python objects), how many were
    refused, and the refused ones ``principal`` may be told of (not another direction's
    organizations: a list may hold them)."""
    added = (
        select(
            candidates.c.participant_id,
            candidates.c.organization_id,
            ((func.row_number().over() - 1) // batch).label("batch"),
        )
        .where(candidates.c.outcome == "added")
        .subquery("added")
    )
    batches = (
        await session.execute(
            select(
                func.count(),
                func.json_agg(
                    func.json_build_object(
                        "participant_id",
                        added.c.participant_id,
                        "organization_id",
                        added.c.organization_id,
                    )
                ).cast(Text),
            ).group_by(added.c.batch)
        )
    ).all()
    outcomes = (
        await session.execute(
            select(
                candidates.c.organization_id,
                candidates.c.outcome,
                directory.may_name(principal, candidates.c.organization_id),
            ).where(candidates.c.outcome != "added")
        )
    ).all()
    refused = [
        Refused(organization_id=organization_id, reason=outcome)
        for organization_id, outcome, shown in outcomes
        if shown
    ]
    count = sum(number for number, _ in batches)
    return count, [entries for _, entries in batches], len(outcomes), refused
