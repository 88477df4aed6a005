"""SQL of automation: rules and their versions, firings and their steps."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    DateTime,
    RowMapping,
    Select,
    SmallInteger,
    String,
    Table,
    Uuid,
    any_,
    bindparam,
    column,
    delete,
    func,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_pipeline.automation.calendar import COMPANY, BusinessCalendar, Calendar, effective
from clientele_pipeline.automation.rules import Rule, RuleIndex, Run, StepRecord
from clientele_pipeline.deals.rules import Deal
from clientele_pipeline.tables import (
    automation_calendars,
    automation_firings,
    automation_recent_events,
    automation_round_robin,
    automation_rule_versions,
    automation_rules,
    automation_schedule,
    automation_steps,
    automation_watches,
    deals,
    employees,
    persons,
)


def rule_of(row: Mapping[Any, Any]) -> Rule:
    return Rule.model_validate(
        {
            **row["definition"],
            **{
                name: row[name]
                for name in (
                    "id",
                    "pipeline_id",
                    "version",
                    "author_subject",
                    "created_at",
                    "updated_at",
                    "deleted_at",
                )
            },
        }
    )


async def load(session: AsyncSession, rule_id: uuid.UUID, *, lock: bool = False) -> Rule | None:
    stmt = select(automation_rules).where(automation_rules.c.id == rule_id)
    if lock:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).mappings().first()
    return None if row is None else rule_of(row)


_AUTHORS: dict[tuple[uuid.UUID, int], dict[str, Any]] = {}
"""Authors of rule versions (append-only, so never stale; this process)."""


async def author_of(session: AsyncSession, rule_id: uuid.UUID, version: int) -> dict[str, Any]:
    """The principal (subject, roles, directions) who wrote this version of the rule."""
    cached = _AUTHORS.get((rule_id, version))
    if cached is not None:
        return dict(cached)
    author = dict(
        (
            await session.execute(
                select(automation_rule_versions.c.author).where(
                    automation_rule_versions.c.rule_id == rule_id,
                    automation_rule_versions.c.version == version,
                )
            )
        ).scalar_one()
    )
    if len(_AUTHORS) > 10_000:
        _AUTHORS.clear()
    _AUTHORS[(rule_id, version)] = author
    return dict(author)


async def insert_rule(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(insert(automation_rules).values(**values))


async def insert_version(
    session: AsyncSession,
    rule_id: uuid.UUID,
    version: int,
    definition: dict[str, Any],
    author: dict[str, Any],
) -> None:
    await session.execute(
        insert(automation_rule_versions).values(
            rule_id=rule_id, version=version, definition=definition, author=author
        )
    )


async def list_rules(
    session: AsyncSession, pipeline_id: uuid.UUID | None, *, deleted: bool = False
) -> list[Rule]:
    stmt = select(automation_rules).order_by(automation_rules.c.created_at, automation_rules.c.id)
    if pipeline_id is not None:
        stmt = stmt.where(automation_rules.c.pipeline_id == pipeline_id)
    stmt = stmt.where(
        automation_rules.c.deleted_at.is_not(None)
        if deleted
        else automation_rules.c.deleted_at.is_(None)
    )
    return [rule_of(row) for row in (await session.execute(stmt)).mappings()]


_RULES: dict[uuid.UUID, tuple[tuple[int, int], RuleIndex]] = {}
"""Parsed enabled rules per pipeline with the stamp they were read at (this process)."""


async def enabled_rules(session: AsyncSession, pipeline_id: uuid.UUID) -> list[Rule]:
    """The pipeline's enabled rules (see ``rule_index``)."""
    return (await rule_index(session, pipeline_id)).rules


async def rule_index(session: AsyncSession, pipeline_id: uuid.UUID) -> RuleIndex:
    """The pipeline's enabled rules, parsed once per change of its rules: a cheap stamp (how
    many rules, the sum of their versions: every write adds a rule or a version) is read
    every time and the cached rules reused while it holds, so every replica sees a rule's
    edit at its next event."""
    row = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(automation_rules.c.version), 0)).where(
                automation_rules.c.pipeline_id == pipeline_id
            )
        )
    ).one()
    stamp = (int(row[0]), int(row[1]))
    cached = _RULES.get(pipeline_id)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    index = RuleIndex(await _enabled_rules(session, pipeline_id))
    if len(_RULES) > 1000:
        _RULES.clear()
    _RULES[pipeline_id] = (stamp, index)
    return index


async def _enabled_rules(session: AsyncSession, pipeline_id: uuid.UUID) -> list[Rule]:
    stmt = (
        select(automation_rules)
        .where(
            automation_rules.c.pipeline_id == pipeline_id,
            automation_rules.c.enabled,
            automation_rules.c.deleted_at.is_(None),
        )
        .order_by(automation_rules.c.created_at, automation_rules.c.id)
    )
    return [rule_of(row) for row in (await session.execute(stmt)).mappings()]


async def chain_of(session: AsyncSession, cause: uuid.UUID) -> list[uuid.UUID]:
    """The rules that acted earlier in a causation chain: an automated change's events name
    the firing that made them as their cause (none for a person's change)."""
    row = (
        await session.execute(
            select(automation_firings.c.rule_id, automation_firings.c.chain).where(
                automation_firings.c.id == cause
            )
        )
    ).first()
    return [] if row is None else [*row.chain, row.rule_id]


async def chains_of(
    session: AsyncSession, causes: set[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """``chain_of`` for several causes in one query (a cause that is no firing: absent)."""
    if not causes:
        return {}
    rows = await session.execute(
        select(
            automation_firings.c.id, automation_firings.c.rule_id, automation_firings.c.chain
        ).where(automation_firings.c.id == any_(_array(list(causes), Uuid)))
    )
    return {row.id: [*row.chain, row.rule_id] for row in rows}


def _recordset(table: Table, names: tuple[str, ...]) -> Select[Any]:
    """The named columns, typed as the table's, of the rows of one JSON parameter ``rows``
    (``jsonb_to_recordset``): one statement text, compiled and prepared once, for any number
    of rows (a multi-row VALUES is a new text, compiled and prepared, for each count)."""
    rows = (
        func.jsonb_to_recordset(bindparam("rows", type_=JSONB))
        .table_valued(*(column(name, table.c[name].type) for name in names))
        .render_derived("r", with_types=True)
    )
    return select(*(rows.c[name] for name in names))


def _plain(value: Any) -> Any:
    """A column's value as JSON (ids and times as text)."""
    if isinstance(value, uuid.UUID | datetime):
        return str(value) if isinstance(value, uuid.UUID) else value.isoformat()
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _records(rows: list[dict[str, Any]], names: tuple[str, ...]) -> dict[str, Any]:
    return {"rows": [{name: _plain(row[name]) for name in names} for row in rows]}


_CLAIMED = (
    "id",
    "rule_id",
    "rule_version",
    "event_id",
    "deal_id",
    "trigger",
    "status",
    "chain",
    "duration_ms",
)
_CLAIM = (
    insert(automation_firings)
    .from_select(list(_CLAIMED), _recordset(automation_firings, _CLAIMED))
    .on_conflict_do_nothing(constraint="uq_automation_firings_key")
    .returning(automation_firings.c.id)
)


async def claim_firings(session: AsyncSession, rows: list[dict[str, Any]]) -> set[uuid.UUID]:
    """Insert the firings (``_CLAIMED`` each) in one statement; the ids of those claimed (the
    others' (rule, version, event) fired already)."""
    if not rows:
        return set()
    return set(await session.scalars(_CLAIM, _records(rows, _CLAIMED)))


async def finish_firings(session: AsyncSession, outcomes: list[dict[str, Any]]) -> None:
    """Several firings' outcomes (``id``, ``status``, ``reason``, ``conditions``,
    ``started_at``, ``duration_ms``) written in one statement."""
    if not outcomes:
        return
    firings = automation_firings
    await session.execute(
        update(firings)
        .where(firings.c.id == bindparam("k_id"))
        .values(
            status=bindparam("v_status"),
            reason=bindparam("v_reason"),
            conditions=bindparam("v_conditions", type_=JSONB),
            started_at=bindparam("v_started_at"),
            duration_ms=bindparam("v_duration_ms"),
        ),
        [
            {
                "k_id": outcome["id"],
                "v_status": outcome["status"],
                "v_reason": outcome.get("reason"),
                "v_conditions": outcome.get("conditions", []),
                "v_started_at": outcome["started_at"],
                "v_duration_ms": outcome["duration_ms"],
            }
            for outcome in outcomes
        ],
    )


async def claim_firing(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert the firing; False if this (rule, version, event) fired already."""
    claimed = await session.scalar(
        insert(automation_firings)
        .values(**values)
        .on_conflict_do_nothing(constraint="uq_automation_firings_key")
        .returning(automation_firings.c.id)
    )
    return claimed is not None


async def finish_firing(
    session: AsyncSession, firing_id: uuid.UUID, values: dict[str, Any]
) -> None:
    await session.execute(
        update(automation_firings).where(automation_firings.c.id == firing_id).values(**values)
    )


async def insert_steps(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Several firings' step records in one statement."""
    if rows:
        await session.execute(
            insert(automation_steps), [{"detail": {}, "error": None, **row} for row in rows]
        )


async def update_step(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(
        update(automation_steps)
        .where(
            automation_steps.c.firing_id == values["firing_id"],
            automation_steps.c.position == values["position"],
        )
        .values(**values)
    )


async def schedule(
    session: AsyncSession, firing_id: uuid.UUID, position: int, due_at: datetime
) -> None:
    """Persist a delayed action."""
    await session.execute(
        insert(automation_schedule).values(firing_id=firing_id, position=position, due_at=due_at)
    )


async def now(session: AsyncSession) -> datetime:
    """The database's time (the transaction's start): delays count from it."""
    moment = await session.scalar(select(func.now()))
    assert isinstance(moment, datetime)
    return moment


async def take_due(session: AsyncSession, limit: int) -> list[RowMapping]:
    """Due delayed actions with their firings and steps (the step's ``detail``), the earliest
    first, the schedule and step rows locked (another replica, or a delivery result for the
    step, skips them)."""
    rows = await session.execute(
        select(
            automation_schedule.c.firing_id,
            automation_schedule.c.position,
            automation_schedule.c.due_at,
            automation_firings.c.rule_id,
            automation_firings.c.rule_version,
            automation_firings.c.deal_id,
            automation_firings.c.trigger,
            automation_steps.c.detail.label("step_detail"),
        )
        .join(automation_firings, automation_firings.c.id == automation_schedule.c.firing_id)
        .join(
            automation_steps,
            (automation_steps.c.firing_id == automation_schedule.c.firing_id)
            & (automation_steps.c.position == automation_schedule.c.position),
        )
        .where(~automation_schedule.c.done, automation_schedule.c.due_at <= func.now())
        .order_by(automation_schedule.c.due_at)
        .limit(limit)
        .with_for_update(of=[automation_schedule, automation_steps], skip_locked=True)
    )
    return list(rows.mappings())


async def finish_due(
    session: AsyncSession, records: list[dict[str, Any]], done: list[tuple[uuid.UUID, int]]
) -> None:
    """A batch of delayed steps' records written, and the schedule rows of those that will
    not run again marked done (two statements for the whole batch)."""
    if records:
        steps = automation_steps
        await session.execute(
            update(steps)
            .where(
                steps.c.firing_id == bindparam("k_firing_id"),
                steps.c.position == bindparam("k_position"),
            )
            .values(
                status=bindparam("v_status"),
                detail=bindparam("v_detail", type_=JSONB),
                error=bindparam("v_error"),
                duration_ms=bindparam("v_duration_ms"),
            ),
            [
                {
                    "k_firing_id": record["firing_id"],
                    "k_position": record["position"],
                    "v_status": record["status"],
                    "v_detail": record["detail"],
                    "v_error": record["error"],
                    "v_duration_ms": record["duration_ms"],
                }
                for record in records
            ],
        )
    if done:
        schedule = automation_schedule
        await session.execute(
            update(schedule)
            .where(
                tuple_(schedule.c.firing_id, schedule.c.position).in_(
                    select(
                        func.unnest(_array([key[0] for key in done], Uuid)),
                        func.unnest(_array([key[1] for key in done], SmallInteger)),
                    )
                )
            )
            .values(done=True)
        )


def _array(values: list[Any], item: Any) -> BindParameter[Any]:
    """One array parameter (one statement text, prepared once, for any number of values)."""
    return bindparam(None, values, type_=ARRAY(item))


def _live(rule_ids: set[uuid.UUID]) -> tuple[ColumnElement[bool], ...]:
    return (
        automation_rules.c.id == any_(_array(list(rule_ids), Uuid)),
        automation_rules.c.enabled,
        automation_rules.c.deleted_at.is_(None),
    )


async def live_rules(session: AsyncSession, rule_ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these rules are enabled and not deleted now."""
    return set(await session.scalars(select(automation_rules.c.id).where(*_live(rule_ids))))


async def live_rule_rows(
    session: AsyncSession, rule_ids: set[uuid.UUID]
) -> dict[uuid.UUID, RowMapping]:
    """The stored rows of these rules that are enabled and not deleted now (``rule_of``
    parses one)."""
    rows = await session.execute(select(automation_rules).where(*_live(rule_ids)))
    return {row["id"]: row for row in rows.mappings()}


async def locked_deals(
    session: AsyncSession, deal_ids: set[uuid.UUID]
) -> dict[uuid.UUID, tuple[Deal, bool]]:
    """These deals (deleted ones too) and whether each one's client is hidden, locked in id
    order (two batches never wait on each other in a circle)."""
    rows = await session.execute(
        select(deals)
        .where(deals.c.id == any_(_array(list(deal_ids), Uuid)))
        .order_by(deals.c.id)
        .with_for_update()
    )
    return {
        row["id"]: (Deal.model_validate(dict(row)), bool(row["client_hidden"]))
        for row in rows.mappings()
    }


async def seconds_to_next(session: AsyncSession) -> tuple[float | None, float | None]:
    """How long until the next delayed action and the next watched trigger are due (None:
    none pending), in one statement: the scheduler's idle poll is this one read."""
    row = (
        await session.execute(
            select(
                select(func.extract("epoch", func.min(automation_schedule.c.due_at) - func.now()))
                .where(~automation_schedule.c.done)
                .scalar_subquery(),
                select(
                    func.extract("epoch", func.min(automation_watches.c.due_at) - func.now())
                ).scalar_subquery(),
            )
        )
    ).one()
    due, watch = row
    return (None if due is None else float(due)), (None if watch is None else float(watch))


_VERSIONS: dict[tuple[uuid.UUID, int], Rule] = {}
"""Parsed rule versions (append-only, so never stale; this process)."""


async def rule_version(session: AsyncSession, rule_id: uuid.UUID, version: int) -> Rule | None:
    """The rule as it was at ``version`` (what a firing used), parsed once per process."""
    cached = _VERSIONS.get((rule_id, version))
    if cached is not None:
        return cached
    found = await _rule_version(session, rule_id, version)
    if found is not None:
        if len(_VERSIONS) > 10_000:
            _VERSIONS.clear()
        _VERSIONS[(rule_id, version)] = found
    return found


async def _rule_version(session: AsyncSession, rule_id: uuid.UUID, version: int) -> Rule | None:
    row = (
        (
            await session.execute(
                select(
                    automation_rules,
                    automation_rule_versions.c.definition.label("old_definition"),
                    automation_rule_versions.c.author.label("old_author"),
                )
                .join(
                    automation_rule_versions,
                    automation_rule_versions.c.rule_id == automation_rules.c.id,
                )
                .where(
                    automation_rules.c.id == rule_id,
                    automation_rule_versions.c.version == version,
                )
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    return rule_of(
        {
            **row,
            "definition": row["old_definition"],
            "version": version,
            "author_subject": row["old_author"]["subject"],
        }
    )


async def runs(
    session: AsyncSession,
    *,
    rule_id: uuid.UUID | None = None,
    deal_id: uuid.UUID | None = None,
    firing_id: uuid.UUID | None = None,
    limit: int = 100,
) -> list[Run]:
    """Firings newest first, each with its steps."""
    stmt = select(automation_firings).order_by(
        automation_firings.c.started_at.desc(), automation_firings.c.id
    )
    if rule_id is not None:
        stmt = stmt.where(automation_firings.c.rule_id == rule_id)
    if deal_id is not None:
        stmt = stmt.where(automation_firings.c.deal_id == deal_id)
    if firing_id is not None:
        stmt = stmt.where(automation_firings.c.id == firing_id)
    firings = (await session.execute(stmt.limit(limit))).mappings().all()
    if not firings:
        return []
    steps: dict[uuid.UUID, list[StepRecord]] = {}
    for row in (
        await session.execute(
            select(automation_steps)
            .where(automation_steps.c.firing_id.in_([f["id"] for f in firings]))
            .order_by(automation_steps.c.firing_id, automation_steps.c.position)
        )
    ).mappings():
        steps.setdefault(row["firing_id"], []).append(StepRecord.model_validate(dict(row)))
    return [Run.model_validate({**row, "steps": steps.get(row["id"], [])}) for row in firings]


# --- business calendars ----------------------------------------------------------------------


def _calendar(row: Mapping[Any, Any]) -> Calendar:
    return Calendar.model_validate(dict(row))


async def calendars(session: AsyncSession, scopes: list[str] | None = None) -> list[Calendar]:
    """The stored calendars (of ``scopes`` when given), the company's first."""
    stmt = select(automation_calendars).order_by(automation_calendars.c.scope)
    if scopes is not None:
        stmt = stmt.where(automation_calendars.c.scope.in_(scopes))
    return [_calendar(row) for row in (await session.execute(stmt)).mappings()]


async def load_calendar(
    session: AsyncSession, scope: str, *, lock: bool = False
) -> Calendar | None:
    stmt = select(automation_calendars).where(automation_calendars.c.scope == scope)
    if lock:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).mappings().first()
    return None if row is None else _calendar(row)


async def save_calendar(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(
        insert(automation_calendars)
        .values(**values)
        .on_conflict_do_update(
            index_elements=[automation_calendars.c.scope],
            set_={**values, "updated_at": func.now()},
        )
    )


async def calendar_for(session: AsyncSession, directions: list[str]) -> BusinessCalendar:
    """The calendar of a record in ``directions``: that of the first of them (in order) with a
    calendar of its own, over the company's."""
    found = {c.scope: c for c in await calendars(session, [COMPANY, *directions])}
    own = next((found[d] for d in sorted(directions) if d in found), None)
    return effective(found.get(COMPANY), own)


# --- watched triggers (date fields, inactivity) ----------------------------------------------


async def set_watches(
    session: AsyncSession, watches: list[tuple[uuid.UUID, uuid.UUID, datetime, str]]
) -> None:
    """Watch (or re-time) rules' triggers for deals, ``(rule, deal, due_at, basis)`` each, in one
    statement; a watch whose basis is the same stays as it is."""
    if not watches:
        return
    table = automation_watches
    given = select(
        func.unnest(_array([w[0] for w in watches], Uuid)).label("rule_id"),
        func.unnest(_array([w[1] for w in watches], Uuid)).label("deal_id"),
        func.unnest(_array([w[2] for w in watches], DateTime(timezone=True))).label("due_at"),
        func.unnest(_array([w[3] for w in watches], String)).label("basis"),
    )
    stmt = insert(table).from_select(["rule_id", "deal_id", "due_at", "basis"], given)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[table.c.rule_id, table.c.deal_id],
            set_={"due_at": stmt.excluded.due_at, "basis": stmt.excluded.basis},
            where=table.c.basis != stmt.excluded.basis,
        )
    )


async def drop_watches_of(session: AsyncSession, keys: list[tuple[uuid.UUID, uuid.UUID]]) -> None:
    """Drop the watches of these ``(rule, deal)`` pairs, in one statement."""
    if not keys:
        return
    table = automation_watches
    await session.execute(
        delete(table).where(
            tuple_(table.c.rule_id, table.c.deal_id).in_(
                select(
                    func.unnest(_array([key[0] for key in keys], Uuid)),
                    func.unnest(_array([key[1] for key in keys], Uuid)),
                )
            )
        )
    )


async def drop_watches(
    session: AsyncSession, *, rule_id: uuid.UUID | None = None, deal_id: uuid.UUID | None = None
) -> None:
    stmt = delete(automation_watches)
    if rule_id is not None:
        stmt = stmt.where(automation_watches.c.rule_id == rule_id)
    if deal_id is not None:
        stmt = stmt.where(automation_watches.c.deal_id == deal_id)
    await session.execute(stmt)


async def take_due_watches(session: AsyncSession, limit: int) -> list[RowMapping]:
    """Up to ``limit`` due watches, the earliest first, deleted (their firings commit in the
    same transaction) with their deals locked; a watch or deal another transaction holds (a
    replica's batch, a deal event in the inbox) is skipped, never waited for."""
    watches = automation_watches
    due = (
        select(watches.c.rule_id, watches.c.deal_id)
        .join(deals, deals.c.id == watches.c.deal_id)
        .where(watches.c.due_at <= func.now())
        .order_by(watches.c.due_at)
        .limit(limit)
        .with_for_update(of=[watches, deals], skip_locked=True)
        .cte("due")
        .prefix_with("MATERIALIZED")  # taken once: never re-run (and re-locked) by the join
    )
    rows = await session.execute(
        delete(watches)
        .where(watches.c.rule_id == due.c.rule_id, watches.c.deal_id == due.c.deal_id)
        .returning(watches)
    )
    return sorted(rows.mappings(), key=lambda row: (row["due_at"], row["deal_id"]))


async def watches_of(session: AsyncSession, deal_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(automation_watches).where(automation_watches.c.deal_id == deal_id)
    )
    return [dict(row) for row in rows.mappings()]


WATCHED_COLUMNS = (
    deals.c.id,
    deals.c.directions,
    deals.c.status,
    deals.c.updated_at,
    deals.c.primary_person_id,
    deals.c.expected_close_date,
    deals.c.custom_fields,
    deals.c.created_at,
)
"""What a watch reads of a deal (its dates, its primary contact, whether it is open)."""


async def live_deal_page(
    session: AsyncSession,
    pipeline_id: uuid.UUID,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[RowMapping]:
    """A page of the pipeline's deals that are not deleted (``WATCHED_COLUMNS``), in creation
    order after ``after`` (the last page's last ``created_at`` and id)."""
    stmt = select(*WATCHED_COLUMNS).where(
        deals.c.pipeline_id == pipeline_id, deals.c.deleted_at.is_(None)
    )
    if after is not None:
        stmt = stmt.where(
            tuple_(deals.c.created_at, deals.c.id)
            > tuple_(literal(after[0], deals.c.created_at.type), literal(after[1], Uuid))
        )
    rows = await session.execute(stmt.order_by(deals.c.created_at, deals.c.id).limit(limit))
    return list(rows.mappings())


async def birthdays(session: AsyncSession, person_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The ISO birthdays of these persons that have one known and are not deleted or merged
    away."""
    if not person_ids:
        return {}
    rows = await session.execute(
        select(persons.c.person_id, persons.c.birthday).where(
            persons.c.person_id == any_(_array(list(person_ids), Uuid)),
            ~persons.c.deleted,
            persons.c.birthday.is_not(None),
        )
    )
    return {row.person_id: row.birthday.isoformat() for row in rows}


async def open_deals_of_contact(session: AsyncSession, person_id: uuid.UUID) -> list[Deal]:
    """The open, live deals whose primary contact is the person, locked in id order: a deal
    the deal events' consumer holds (``locked_deals``) is waited for, so a deal's watch is
    computed by one transaction after the other, never by two that each miss the other's
    change (a birthday read as missing, then the watch set from it dropped). A persons batch
    locks contact by contact, so against a deals batch in another order PostgreSQL may end
    one of them as a deadlock; its batch is then applied again event by event."""
    rows = await session.execute(
        select(deals)
        .where(
            deals.c.person_ids.contains([person_id]),  # the GIN index
            deals.c.primary_person_id == person_id,
            deals.c.status == "open",
            deals.c.deleted_at.is_(None),
        )
        .order_by(deals.c.id)
        .with_for_update()
    )
    return [Deal.model_validate(dict(row)) for row in rows.mappings()]


async def firing_deal(session: AsyncSession, firing_id: uuid.UUID) -> uuid.UUID | None:
    """The deal a firing acted on (None: no such firing)."""
    found = await session.scalar(
        select(automation_firings.c.deal_id).where(automation_firings.c.id == firing_id)
    )
    return found if isinstance(found, uuid.UUID) else None


async def set_hook_secret(session: AsyncSession, rule_id: uuid.UUID, secret: str) -> None:
    await session.execute(
        update(automation_rules).where(automation_rules.c.id == rule_id).values(hook_secret=secret)
    )


async def hook_secret(session: AsyncSession, rule_id: uuid.UUID) -> str | None:
    """The inbound webhook secret of a live, enabled rule (None otherwise)."""
    found = await session.scalar(
        select(automation_rules.c.hook_secret).where(
            automation_rules.c.id == rule_id,
            automation_rules.c.enabled,
            automation_rules.c.deleted_at.is_(None),
        )
    )
    return found if isinstance(found, str) else None


async def firing_of(
    session: AsyncSession, rule_id: uuid.UUID, version: int, event_id: uuid.UUID
) -> uuid.UUID | None:
    found = await session.scalar(
        select(automation_firings.c.id).where(
            automation_firings.c.rule_id == rule_id,
            automation_firings.c.rule_version == version,
            automation_firings.c.event_id == event_id,
        )
    )
    return found if isinstance(found, uuid.UUID) else None


async def step_of(session: AsyncSession, firing_id: uuid.UUID, position: int) -> RowMapping | None:
    """A firing's step with the firing's rule, version and deal, locked."""
    return (
        (
            await session.execute(
                select(
                    automation_steps,
                    automation_firings.c.rule_id,
                    automation_firings.c.rule_version,
                    automation_firings.c.deal_id,
                )
                .join(automation_firings, automation_firings.c.id == automation_steps.c.firing_id)
                .where(
                    automation_steps.c.firing_id == firing_id,
                    automation_steps.c.position == position,
                )
                .with_for_update(of=automation_steps)
            )
        )
        .mappings()
        .first()
    )


async def reschedule(
    session: AsyncSession, firing_id: uuid.UUID, position: int, due_at: datetime
) -> None:
    """Run a firing's step again at ``due_at`` (a retry)."""
    stmt = insert(automation_schedule).values(
        firing_id=firing_id, position=position, due_at=due_at, done=False
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[automation_schedule.c.firing_id, automation_schedule.c.position],
            set_={"due_at": due_at, "done": False},
        )
    )


# --- recent events (testing a rule before enabling it) --------------------------------------

RECENT_DAYS = 30
"""How long trigger events are kept for testing rules against them."""


async def remember(
    session: AsyncSession,
    *,
    event_id: uuid.UUID,
    pipeline_id: uuid.UUID,
    deal_id: uuid.UUID,
    event_type: str,
    occurred_at: datetime,
    occurrences: list[dict[str, Any]],
) -> None:
    await session.execute(
        insert(automation_recent_events)
        .values(
            event_id=event_id,
            pipeline_id=pipeline_id,
            deal_id=deal_id,
            event_type=event_type,
            occurred_at=occurred_at,
            occurrences=occurrences,
        )
        .on_conflict_do_nothing()
    )


_REMEMBERED = ("event_id", "pipeline_id", "deal_id", "event_type", "occurred_at", "occurrences")
_REMEMBER = (
    insert(automation_recent_events)
    .from_select(list(_REMEMBERED), _recordset(automation_recent_events, _REMEMBERED))
    .on_conflict_do_nothing()
)


async def remember_many(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """``remember`` for several events in one statement."""
    if rows:
        await session.execute(_REMEMBER, _records(rows, _REMEMBERED))


async def recent_events(
    session: AsyncSession, pipeline_id: uuid.UUID, last: int
) -> list[RowMapping]:
    """The pipeline's last ``last`` trigger events, newest first."""
    rows = await session.execute(
        select(automation_recent_events)
        .where(automation_recent_events.c.pipeline_id == pipeline_id)
        .order_by(automation_recent_events.c.occurred_at.desc())
        .limit(last)
    )
    return list(rows.mappings())


async def forget_old_events(session: AsyncSession, batch: int = 5000) -> int:
    """Delete a batch of trigger events older than ``RECENT_DAYS``; how many went."""
    old = (
        select(automation_recent_events.c.event_id)
        .where(automation_recent_events.c.recorded_at < func.now() - timedelta(days=RECENT_DAYS))
        .limit(batch)
        .scalar_subquery()
    )
    result = await session.execute(
        delete(automation_recent_events).where(automation_recent_events.c.event_id.in_(old))
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def next_turn(session: AsyncSession, rule_id: uuid.UUID) -> int:
    """The rule's next round-robin turn (0, 1, 2, ...; the row locked until commit)."""
    stmt = insert(automation_round_robin).values(rule_id=rule_id, turns=1)
    turns = await session.scalar(
        stmt.on_conflict_do_update(
            index_elements=[automation_round_robin.c.rule_id],
            set_={"turns": automation_round_robin.c.turns + 1},
        ).returning(automation_round_robin.c.turns)
    )
    return int(turns or 1) - 1


async def active_employees(session: AsyncSession, directions: list[str]) -> list[uuid.UUID]:
    """Active employees working in any of ``directions``, in a stable order."""
    rows = await session.execute(
        select(employees.c.employee_id)
        .where(employees.c.active, employees.c.directions.overlap(directions))
        .order_by(employees.c.employee_id)
    )
    return list(rows.scalars())


async def firing_rule(session: AsyncSession, firing_id: uuid.UUID) -> uuid.UUID:
    found = await session.scalar(
        select(automation_firings.c.rule_id).where(automation_firings.c.id == firing_id)
    )
    assert isinstance(found, uuid.UUID)
    return found
