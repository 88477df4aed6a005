"""Firing rules: a deal event (or a manual run) against the pipeline's enabled rules, each
firing recorded once per (rule, version, event), each action in its own savepoint (ADR 25)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from clientele_shared.auth.principal import Principal
from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.events.inbox import bind
from clientele_shared.events.outbox import Outbox
from clientele_shared.events.schemas.notifications import (
    Channel,
    NotificationRequested,
    Recipient,
    notification_requested,
)
from clientele_shared.events.topics import PIPELINE
from clientele_shared.http.problems import ProblemError
from clientele_shared.observability import causation_id_var, get_logger
from clientele_shared.service_layer import UnitOfWork
from clientele_shared.templating import RenderedMessage, try_render
from sqlalchemy import RowMapping, func
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clientele_pipeline.automation import queries
from clientele_pipeline.automation.calendar import BusinessCalendar, Delay
from clientele_pipeline.automation.peers import Interactions, PeerRefused, PeerUnavailable
from clientele_pipeline.automation.rules import (
    BIRTHDAY,
    MAX_CHAIN,
    RETRY_BACKOFF_SECONDS,
    WATCHED,
    AddTags,
    BacktestResult,
    CreateDeal,
    CreateTask,
    DateReached,
    MoveToStage,
    NoActivity,
    Notify,
    Occurrence,
    RemoveTags,
    Rule,
    RuleIndex,
    ScheduleInteraction,
    SetField,
    SetResponsible,
    Webhook,
    deal_values,
    elapsed_ms,
    evaluate,
    request_key,
    set_field_patch,
    title_template,
    triggered,
    watch_due,
    watch_event,
    watch_key,
    watched_values,
)
from clientele_pipeline.clients import service as clients
from clientele_pipeline.deals import queries as deal_queries
from clientele_pipeline.deals import service as deals
from clientele_pipeline.deals.rules import Deal, DealDraft, DealPatch, Move
from clientele_pipeline.tables import audit_log
from clientele_pipeline.tasks import service as tasks
from clientele_pipeline.tasks.rules import TaskDraft

log = get_logger(__name__)


def rule_actor(rule: Rule) -> Actor:
    """Who the audit trail and events name for a rule's actions: the rule and its version."""
    return Actor(subject=f"automation:{rule.id}@v{rule.version}", kind="automation")


def rule_principal(rule: Rule, author: dict[str, Any]) -> Principal:
    """The rule acts with its author's roles and directions, never more."""
    return Principal(
        subject=f"automation:{rule.id}@v{rule.version}",
        roles=frozenset(author.get("roles", [])),
        directions=frozenset(author.get("directions", [])),
        name=f"rule «{rule.name}» v{rule.version}",
    )


def scope_stage(rule: Rule, occurrence: Occurrence, deal: Deal) -> bool:
    """A rule attached to a stage sees the stage entered, left, or the deal is in."""
    if rule.stage_id is None:
        return True
    facts = occurrence.facts
    stage = {
        "stage_entered": facts.get("to_stage_id"),
        "stage_left": facts.get("from_stage_id"),
    }.get(occurrence.kind, str(deal.stage_id))
    return stage == str(rule.stage_id)


@dataclass(frozen=True)
class Trigger:
    """One event as the engine takes it: its occurrences (about one deal), its cause and,
    for the events that re-time the deal's watches first, whether it is activity."""

    deal_id: uuid.UUID
    occurrences: list[Occurrence]
    causation_id: str | None
    occurred_at: datetime
    event_type: str
    activity: bool | None = None
    """Re-time the deal's watches first (True: an activity restarts the inactivity count);
    None: no re-timing."""
    envelope: Envelope | None = None
    """Bound while the engine works on this event (its logs and events carry its ids)."""


@dataclass
class Held:
    """A deal this transaction locked, as it is now (``found``: ``deal_queries.load``'s
    answer; None: to be read again, e.g. after an action that failed in its savepoint)."""

    deal_id: uuid.UUID
    found: tuple[Deal, bool] | None

    async def get(self, session: AsyncSession) -> tuple[Deal, bool] | None:
        if self.found is None:
            self.found = await deal_queries.load(session, self.deal_id, lock=True)
        return self.found


@dataclass(frozen=True)
class _Planned:
    trigger: Trigger
    rule: Rule
    event_id: uuid.UUID
    event: dict[str, Any]
    chain: list[uuid.UUID]
    firing_id: uuid.UUID = field(default_factory=uuid.uuid4)


async def on_occurrences(
    session: AsyncSession,
    outbox: Outbox,
    occurrences: list[Occurrence],
    causation_id: str | None,
    occurred_at: datetime,
    event_type: str,
    *,
    activity: bool | None = None,
) -> None:
    """Fire every enabled rule of the deal's pipeline whose trigger one of the event's
    occurrences matches (once per rule and event); ``activity``: re-time the deal's watches
    first, as ``Trigger.activity``."""
    if occurrences:
        trigger = Trigger(
            occurrences[0].deal_id, occurrences, causation_id, occurred_at, event_type, activity
        )
        await on_triggers(session, outbox, [trigger])


async def on_triggers(session: AsyncSession, outbox: Outbox, triggers: list[Trigger]) -> None:
    """Several events (an inbox batch, in their order) against the enabled rules of their
    deals' pipelines, as if each was taken alone in turn (ADR 54): the deals are locked (in id
    order) and read in one query, the pipelines' rules, the events' causation chains and the
    events remembered in one statement each; then in rounds (the first event of each deal,
    then the second...) each round's firings claimed in one statement and run, each on its
    deal as the earlier firings left it; the firings' outcomes, steps, audit entries and
    events written at the end in a few statements."""
    if not triggers:
        return
    locked = await queries.locked_deals(session, {t.deal_id for t in triggers})
    held = {t.deal_id: Held(t.deal_id, locked.get(t.deal_id)) for t in triggers}
    live = {
        deal_id: h.found[0]
        for deal_id, h in held.items()
        if h.found is not None and not h.found[1] and h.found[0].deleted_at is None
    }
    indexes = {
        pipeline_id: await queries.rule_index(session, pipeline_id)
        for pipeline_id in {deal.pipeline_id for deal in live.values()}
    }
    await queries.remember_many(
        session,
        [
            {
                "event_id": t.occurrences[0].event_id,
                "pipeline_id": live[t.deal_id].pipeline_id,
                "deal_id": t.deal_id,
                "event_type": t.event_type,
                "occurred_at": t.occurred_at,
                "occurrences": [{"kind": o.kind, "facts": o.facts} for o in t.occurrences],
            }
            for t in triggers
            if t.occurrences and t.deal_id in live
        ],
    )
    chains = await queries.chains_of(
        session, {cause for t in triggers if (cause := _cause(t)) is not None}
    )
    batch = UnitOfWork(
        session,
        outbox,
        audit_log,
        Actor(subject="automation"),
        batched=True,
        defer_at=await queries.now(session) if len(triggers) > 1 else None,
    )
    outcomes: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    for round_ in _rounds(triggers):
        planned: list[_Planned] = []
        for trigger in round_:
            _enter(trigger)
            if trigger.activity is not None:
                await _retime(session, held[trigger.deal_id], trigger, indexes)
            if not trigger.occurrences or trigger.deal_id not in live:
                continue
            found = await held[trigger.deal_id].get(session)
            assert found is not None
            cause = _cause(trigger)
            chain = chains.get(cause, []) if cause is not None else []
            planned += _plan(trigger, found[0], indexes[found[0].pipeline_id], chain)
        claimed = await queries.claim_firings(
            session,
            [
                {
                    "id": p.firing_id,
                    "rule_id": p.rule.id,
                    "rule_version": p.rule.version,
                    "event_id": p.event_id,
                    "deal_id": p.trigger.deal_id,
                    "trigger": p.event,
                    "status": "fired",
                    "chain": p.chain,
                    "duration_ms": 0,
                }
                for p in planned
            ],
        )
        for p in planned:
            if p.firing_id not in claimed:
                continue
            _enter(p.trigger)
            began = datetime.now(UTC)
            outcome, records = await _fired(
                session,
                outbox,
                p.rule,
                p.firing_id,
                held[p.trigger.deal_id],
                p.event,
                p.chain,
                batch,
            )
            outcomes.append({**outcome, "id": p.firing_id, "started_at": began})
            steps += records
    await queries.insert_steps(session, steps)
    await queries.finish_firings(session, outcomes)
    await batch.finish()


def _enter(trigger: Trigger) -> None:
    if trigger.envelope is not None:
        bind(trigger.envelope)


def _cause(trigger: Trigger) -> uuid.UUID | None:
    if trigger.causation_id is None:
        return None
    try:
        return uuid.UUID(trigger.causation_id)
    except ValueError:
        return None


def _rounds(triggers: list[Trigger]) -> list[list[Trigger]]:
    """The events in rounds: the first event of each deal, then the second... (a deal's
    events keep their order; different deals' do not touch each other)."""
    rounds: list[list[Trigger]] = []
    seen: dict[uuid.UUID, int] = {}
    for trigger in triggers:
        turn = seen.get(trigger.deal_id, 0)
        seen[trigger.deal_id] = turn + 1
        if turn == len(rounds):
            rounds.append([])
        rounds[turn].append(trigger)
    return rounds


def _plan(trigger: Trigger, deal: Deal, index: RuleIndex, chain: list[uuid.UUID]) -> list[_Planned]:
    """The rules one event fires on the deal (each at most once), in the rules' order."""
    planned = []
    for rule in index.candidates(trigger.occurrences):
        if not rule.in_force_at(trigger.occurred_at):
            continue
        for occurrence in trigger.occurrences:
            event = triggered(rule.trigger, occurrence)
            if event is not None and scope_stage(rule, occurrence, deal):
                planned.append(_Planned(trigger, rule, occurrence.event_id, event, chain))
                break
    return planned


async def _retime(
    session: AsyncSession, held: Held, trigger: Trigger, indexes: dict[uuid.UUID, RuleIndex]
) -> None:
    """``retime`` on a deal the batch locked (a deleted one loses its watches): nothing to
    read or write when its pipeline has no watched rule (no watch of the deal can exist
    then)."""
    found = await held.get(session)
    if found is None or found[0].deleted_at is not None:
        await queries.drop_watches(session, deal_id=held.deal_id)
        return
    index = indexes.get(found[0].pipeline_id)
    if index is None:  # a deal of a hidden client: its pipeline's rules not read yet
        index = indexes[found[0].pipeline_id] = await queries.rule_index(
            session, found[0].pipeline_id
        )
    if index.watching:
        assert trigger.activity is not None
        await retime(session, found[0], index.rules, trigger.occurred_at, trigger.activity)


def backtest_one(rule: Rule, row: Any, deal: Deal) -> BacktestResult:
    """Whether ``rule`` would have fired on one stored trigger event, its conditions
    evaluated on the deal as it is now (no I/O)."""
    base = {
        "event_id": row["event_id"],
        "event_type": row["event_type"],
        "occurred_at": row["occurred_at"],
        "deal_id": deal.id,
    }
    for stored in row["occurrences"]:
        occurrence = Occurrence(
            event_id=row["event_id"], kind=stored["kind"], deal_id=deal.id, facts=stored["facts"]
        )
        event = triggered(rule.trigger, occurrence)
        if event is None or not scope_stage(rule, occurrence, deal):
            continue
        evaluation = evaluate(rule.conditions, deal_values(deal), event)
        return BacktestResult(
            **base,
            triggered=True,
            would_fire=evaluation.passed and deal.deleted_at is None,
            trigger=event,
            conditions=evaluation.checks,
        )
    return BacktestResult(**base, triggered=False, would_fire=False)


async def retime(
    session: AsyncSession, deal: Deal, rules: list[Rule], occurred_at: datetime, activity: bool
) -> None:
    """Re-time the deal's watched triggers (date fields, inactivity) of these enabled rules
    after one of its events: a changed date moves its watch, an ``activity`` (an event not
    made by a rule) restarts the inactivity count."""
    watched = [
        rule
        for rule in rules
        if rule.trigger.kind == "date_reached" or (activity and rule.trigger.kind in WATCHED)
    ]
    if watched:
        await watch(session, deal, watched, occurred_at)


@dataclass(frozen=True)
class Watched:
    """What a watch reads of a deal: its dates (``values``, as conditions see them), its
    primary contact, whether it is open, and its last activity."""

    id: uuid.UUID
    directions: list[str]
    status: str
    activity_at: datetime
    primary_person_id: uuid.UUID | None
    values: dict[str, Any]

    @classmethod
    def of(cls, deal: Deal, activity_at: datetime) -> Watched:
        return cls(
            deal.id,
            deal.directions,
            deal.status,
            activity_at,
            deal.primary_person_id,
            watched_values(deal.expected_close_date, deal.custom_fields),
        )

    @classmethod
    def of_row(cls, row: RowMapping) -> Watched:
        """A deal read with ``queries.WATCHED_COLUMNS``, its last change its last activity."""
        return cls(
            row["id"],
            row["directions"],
            row["status"],
            row["updated_at"],
            row["primary_person_id"],
            watched_values(row["expected_close_date"], row["custom_fields"]),
        )


async def watch(
    session: AsyncSession, deal: Deal, rules: list[Rule], activity_at: datetime
) -> None:
    """Set, move or drop the deal's watches of these rules (``watch_deals``)."""
    await watch_deals(session, [Watched.of(deal, activity_at)], rules)


async def watch_deals(session: AsyncSession, found: list[Watched], rules: list[Rule]) -> None:
    """Set, move or drop these deals' watches of these rules (a due time already past is not
    watched: a date moved into the past does not fire late): the database's time read once,
    each directions' calendar once, the contacts' birthdays in one query, the watches set and
    dropped in one statement each."""
    now = await queries.now(session)
    calendars: dict[tuple[str, ...], BusinessCalendar] = {}
    contacts = {deal.primary_person_id for deal in found if deal.primary_person_id}
    known = await queries.birthdays(session, contacts) if any(map(_on_birthday, rules)) else {}
    kept: list[tuple[uuid.UUID, uuid.UUID, datetime, str]] = []
    dropped: list[tuple[uuid.UUID, uuid.UUID]] = []
    for deal in found:
        scope = tuple(sorted(deal.directions))
        if scope not in calendars:
            calendars[scope] = await queries.calendar_for(session, deal.directions)
        person = deal.primary_person_id
        values = {**deal.values, "contact": {"birthday": known.get(person) if person else None}}
        for rule in rules:
            trigger = rule.trigger
            assert isinstance(trigger, DateReached | NoActivity)
            due = watch_due(trigger, values, calendars[scope], deal.activity_at, now)
            if (isinstance(trigger, NoActivity) or _on_birthday(rule)) and deal.status != "open":
                due = None
            if due is None or due[0] <= now:
                dropped.append((rule.id, deal.id))
            else:
                kept.append((rule.id, deal.id, *due))
    await queries.set_watches(session, kept)
    await queries.drop_watches_of(session, dropped)


def _on_birthday(rule: Rule) -> bool:
    return isinstance(rule.trigger, DateReached) and rule.trigger.field == BIRTHDAY


async def on_contact_changed(session: AsyncSession, person_id: uuid.UUID) -> None:
    """A person's birthday (or presence) changed: the birthday watches of the open deals it
    is the primary contact of are moved."""
    for deal in await queries.open_deals_of_contact(session, person_id):
        rules = [
            r for r in await queries.enabled_rules(session, deal.pipeline_id) if _on_birthday(r)
        ]
        if rules:
            await watch(session, deal, rules, deal.updated_at)


WATCH_PAGE = 2000
"""Deals re-watched together when a rule is written (one page of reads, two statements)."""


async def watch_pipeline(session: AsyncSession, rule: Rule) -> None:
    """A rule just written: its watches set anew on every live deal of its pipeline, a page of
    deals at a time (none when it is disabled, deleted or not watching)."""
    await queries.drop_watches(session, rule_id=rule.id)
    if rule.trigger.kind not in WATCHED or not rule.enabled or rule.deleted_at is not None:
        return
    after: tuple[datetime, uuid.UUID] | None = None
    while page := await queries.live_deal_page(session, rule.pipeline_id, after, WATCH_PAGE):
        await watch_deals(session, [Watched.of_row(row) for row in page], [rule])
        after = (page[-1]["created_at"], page[-1]["id"])


async def run_due_watches(sessions: async_sessionmaker[AsyncSession], outbox: Outbox) -> int:
    """Fire a batch of due watched triggers (``run_batch``: the watches deleted in the batch's
    transaction, their deals locked); how many were taken. Each fires its rule's current
    version once per (rule, deal, basis), its conditions evaluated on the deal now; a
    birthday's next year is watched again, even after a broken firing."""

    async def begin(session: AsyncSession) -> tuple[list[RowMapping], DueBatch[Any]]:
        taken = await queries.take_due_watches(session, DUE_BATCH)
        rules = {d["rule_id"] for d in taken}
        rows = await queries.live_rule_rows(session, rules) if taken else {}
        return taken, _DueWatches(session, outbox, rows)

    return await run_batch(sessions, begin)


class _DueWatches:
    """A batch of due watches (``rows``: their rules that are on, parsed once each)."""

    def __init__(
        self, session: AsyncSession, outbox: Outbox, rows: dict[uuid.UUID, RowMapping]
    ) -> None:
        self.session, self.outbox, self.rows = session, outbox, rows
        self.rules: dict[uuid.UUID, Rule] = {}

    def rule(self, rule_id: uuid.UUID) -> Rule | None:
        if rule_id not in self.rules and rule_id in self.rows:
            self.rules[rule_id] = queries.rule_of(self.rows[rule_id])
        return self.rules.get(rule_id)

    async def run(self, due: RowMapping, found: tuple[Deal, bool] | None) -> None:
        rule = self.rule(due["rule_id"])
        if (
            rule is None
            or not isinstance(rule.trigger, DateReached | NoActivity)
            or found is None
            or found[1]
            or found[0].deleted_at is not None
            or (rule.stage_id is not None and rule.stage_id != found[0].stage_id)
            or (_on_birthday(rule) and found[0].status != "open")
        ):
            return
        event = watch_event(rule.trigger, due["basis"])
        event_id = _watch_event_id(due, watch_key(rule.trigger, due["basis"]))
        await fire(self.session, self.outbox, rule, found[0].id, event_id, event, [])

    async def broke(self, due: RowMapping, error: str) -> None:
        """Recorded in the run log (a ``failed`` firing under the watch's key) and on the
        deal's timeline."""
        row = self.rows.get(due["rule_id"])
        version = int(row["version"]) if row is not None else 0
        try:
            rule = self.rule(due["rule_id"])
        except Exception:  # a rule that does not parse: its basis keys the record
            rule = None
        trigger = rule.trigger if rule is not None else None
        if isinstance(trigger, DateReached | NoActivity):
            event = watch_event(trigger, due["basis"])
            key = watch_key(trigger, due["basis"])
        else:
            event, key = {"basis": due["basis"]}, due["basis"]
        await queries.claim_firing(
            self.session,
            {
                "id": uuid.uuid4(),
                "rule_id": due["rule_id"],
                "rule_version": version,
                "event_id": _watch_event_id(due, key),
                "deal_id": due["deal_id"],
                "trigger": event,
                "status": "failed",
                "reason": error,
                "chain": [],
                "duration_ms": 0,
                "started_at": func.clock_timestamp(),
            },
        )
        actor = Actor(subject=f"automation:{due['rule_id']}@v{version}", kind="automation")
        await UnitOfWork(self.session, self.outbox, audit_log, actor).audit(
            kind=deals.KIND,
            entity_id=due["deal_id"],
            action="automation_failed",
            version=None,
            changes={"trigger": {"old": None, "new": event}},
            note=error,
        )

    async def settle(self, due: RowMapping, result: None, started: float) -> None:
        """A birthday's next year watched (in its own savepoint: a deal that cannot be watched
        is logged and keeps no watch)."""
        try:
            rule = self.rule(due["rule_id"])
        except Exception:
            return
        if rule is None or not _on_birthday(rule):
            return
        try:
            async with self.session.begin_nested():
                again = await deal_queries.load(self.session, due["deal_id"])
                if again is not None and again[0].deleted_at is None:
                    await watch(self.session, again[0], [rule], again[0].updated_at)
        except Exception:
            log.exception("a birthday could not be watched again", due=dict(due))

    async def finish(self) -> None:
        pass


def _watch_event_id(due: RowMapping, key: str) -> uuid.UUID:
    """A watched firing's event id: its rule, deal and key (the firing happens once)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"automation:{due['rule_id']}:{due['deal_id']}:{key}")


async def fire(
    session: AsyncSession,
    outbox: Outbox,
    rule: Rule,
    deal_id: uuid.UUID,
    event_id: uuid.UUID,
    event: dict[str, Any],
    chain: list[uuid.UUID],
) -> uuid.UUID | None:
    """One firing: claimed once, loop-checked, conditions evaluated, actions run in order
    (each in a savepoint: a failure is recorded and the next action runs). None if this
    (rule, version, event) fired before."""
    started = time.perf_counter()
    firing_id = uuid.uuid4()
    claimed = await queries.claim_firing(
        session,
        {
            "id": firing_id,
            "rule_id": rule.id,
            "rule_version": rule.version,
            "event_id": event_id,
            "deal_id": deal_id,
            "trigger": event,
            "status": "fired",
            "chain": chain,
            "duration_ms": 0,
            "started_at": func.clock_timestamp(),  # not the batch transaction's start
        },
    )
    if not claimed:
        return None
    held = Held(deal_id, None)
    outcome, records = await _fired(session, outbox, rule, firing_id, held, event, chain, None)
    await queries.insert_steps(session, records)
    outcome["duration_ms"] = elapsed_ms(started)
    await queries.finish_firing(session, firing_id, outcome)
    return firing_id


async def _fired(
    session: AsyncSession,
    outbox: Outbox,
    rule: Rule,
    firing_id: uuid.UUID,
    held: Held,
    event: dict[str, Any],
    chain: list[uuid.UUID],
    batch: UnitOfWork | None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A claimed firing's work on the locked deal: its outcome and its steps' records (to
    write). ``batch``: the unit of work the steps' audit entries and events go to (written
    at its end); None: each step writes its own."""
    started = time.perf_counter()
    outcome: dict[str, Any] = {"status": "fired"}
    records: list[dict[str, Any]] = []
    found = await held.get(session)
    assert found is not None
    deal = found[0]
    principal = rule_principal(rule, await queries.author_of(session, rule.id, rule.version))
    if rule.id in chain:
        outcome = {
            "status": "loop_stopped",
            "reason": "the rule already acted in this causation chain: "
            + " -> ".join(str(r) for r in chain),
        }
    elif len(chain) >= MAX_CHAIN:
        outcome = {"status": "loop_stopped", "reason": f"causation chain longer than {MAX_CHAIN}"}
    elif not principal.can_see(deal.directions):
        outcome = {
            "status": "skipped",
            "reason": "the deal is outside the rule author's directions",
        }
    else:
        evaluation = evaluate(rule.conditions, deal_values(deal), event)
        outcome["conditions"] = [check.model_dump() for check in evaluation.checks]
        if not evaluation.passed:
            outcome["status"] = "conditions_not_met"
        else:
            actor = rule_actor(rule)
            calendar: BusinessCalendar | None = None
            for position, action in enumerate(rule.actions):
                due_at = None
                if action.waits():
                    if calendar is None:
                        calendar = await queries.calendar_for(session, deal.directions)
                    moment = await queries.now(session)
                    due_at = action.due(calendar, moment)
                    if due_at <= moment and not isinstance(action, ScheduleInteraction):
                        due_at = None  # in working hours already: at once
                if due_at is not None:
                    await queries.schedule(session, firing_id, position, due_at)
                    record = {
                        "firing_id": firing_id,
                        "position": position,
                        "kind": action.kind,
                        "status": "scheduled",
                        "detail": {"due_at": due_at.isoformat()},
                        "duration_ms": 0,
                    }
                else:
                    record = await _step(
                        session,
                        outbox,
                        actor,
                        principal,
                        firing_id,
                        position,
                        action,
                        held.deal_id,
                        held=held,
                        batch=batch,
                    )
                records.append(record)
    outcome["duration_ms"] = elapsed_ms(started)
    return outcome, records


async def _step(
    session: AsyncSession,
    outbox: Outbox,
    actor: Actor,
    principal: Principal,
    firing_id: uuid.UUID,
    position: int,
    action: Any,
    deal_id: uuid.UUID,
    attempt: int = 1,
    interactions: Interactions | None = None,
    *,
    held: Held | None = None,
    batch: UnitOfWork | None = None,
) -> dict[str, Any]:
    """Run one action in a savepoint (its events name the firing as their cause); the step's
    record: done, skipped (why), retrying (a peer unavailable) or failed (the error).
    ``held``: the deal as this transaction locked it (kept as the action leaves it);
    ``batch``: where the step's audit entries and events go (else written at its end)."""
    started = time.perf_counter()
    record: dict[str, Any] = {"firing_id": firing_id, "position": position, "kind": action.kind}
    if batch is not None and batch.deferring:
        if isinstance(action, DEFERRED) and held is not None and held.found is not None:
            return await _deferred_step(
                session, outbox, actor, principal, firing_id, position, action, held, batch
            )
        await batch.flush_versions()  # the action reads the deal from the database
    token = causation_id_var.set(str(firing_id))
    try:
        async with session.begin_nested():
            uow = UnitOfWork(session, outbox, audit_log, actor, batched=True)
            detail = await _act(
                uow, principal, firing_id, position, action, deal_id, attempt, interactions, held
            )
            if batch is None:
                await uow.finish()
        if batch is not None:
            uow.hand_over(batch)
        record |= {"status": "skipped" if "skipped" in detail else "done", "detail": detail}
    except PeerUnavailable as exc:  # the scheduler retries it with back-off, the same request
        detail = {"attempt": attempt, "request": exc.request}
        record |= {"status": "retrying", "error": str(exc)[:2000], "detail": detail}
    except ProblemError as exc:
        record |= {"status": "failed", "error": f"{exc.status} {exc.title}: {exc}"}
    except Exception as exc:  # an action's failure never blocks the rest
        record |= {"status": "failed", "error": repr(exc)}
    finally:
        causation_id_var.reset(token)
    if record["status"] in ("failed", "retrying") and held is not None:
        held.found = None  # rolled back to its savepoint: read again when needed
    if record["status"] in ("failed", "retrying"):  # on the deal's timeline too
        await UnitOfWork(session, outbox, audit_log, actor).audit(
            kind=deals.KIND,
            entity_id=deal_id,
            action="automation_failed",
            version=None,
            changes={"action": {"old": None, "new": action.kind}},
            note=record["error"][:2000],
        )
    record["duration_ms"] = elapsed_ms(started)
    return record


DEFERRED = (SetField, AddTags, RemoveTags, SetResponsible)
"""The actions that only patch the deal: in a batch, their writes wait for its end (ADR 60)."""


async def _deferred_step(
    session: AsyncSession,
    outbox: Outbox,
    actor: Actor,
    principal: Principal,
    firing_id: uuid.UUID,
    position: int,
    action: Any,
    held: Held,
    batch: UnitOfWork,
) -> dict[str, Any]:
    """``_step`` of a patch of the held deal in a batch, without a savepoint: the patch is
    checked here and its UPDATE written with the batch's others (``flush_versions``), so a
    failure here has written nothing and the deal stays as it was. A database error (the
    transaction may be broken) fails the batch: the inbox then applies its events one per
    transaction, where each action has its savepoint again."""
    started = time.perf_counter()
    record: dict[str, Any] = {"firing_id": firing_id, "position": position, "kind": action.kind}
    token = causation_id_var.set(str(firing_id))
    uow = UnitOfWork(session, outbox, audit_log, actor, batched=True, defer_at=batch.defer_at)
    try:
        detail = await _act(
            uow, principal, firing_id, position, action, held.deal_id, 1, None, held
        )
        uow.hand_over(batch)
        record |= {"status": "skipped" if "skipped" in detail else "done", "detail": detail}
    except SQLAlchemyError:
        raise
    except ProblemError as exc:
        record |= {"status": "failed", "error": f"{exc.status} {exc.title}: {exc}"}
    except Exception as exc:  # an action's failure never blocks the rest
        record |= {"status": "failed", "error": repr(exc)}
    finally:
        causation_id_var.reset(token)
    if record["status"] == "failed":  # on the deal's timeline too
        await UnitOfWork(session, outbox, audit_log, actor).audit(
            kind=deals.KIND,
            entity_id=held.deal_id,
            action="automation_failed",
            version=None,
            changes={"action": {"old": None, "new": action.kind}},
            note=record["error"][:2000],
        )
    record["duration_ms"] = elapsed_ms(started)
    return record


async def _act(
    uow: UnitOfWork,
    principal: Principal,
    firing_id: uuid.UUID,
    position: int,
    action: Any,
    deal_id: uuid.UUID,
    attempt: int,
    interactions: Interactions | None,
    held: Held | None,
) -> dict[str, Any]:
    deal = (
        await deals.locked_deal(uow, principal, deal_id)
        if held is None or held.found is None
        else deals.writable_deal(principal, held.found)
    )
    expected = {deal.version}
    if (
        isinstance(action, SetResponsible | Notify | CreateTask | CreateDeal | ScheduleInteraction)
        and deal.client_blocked
    ):
        blocked = not isinstance(action, Notify) or action.channel == "email"
        if blocked:
            await uow.audit(
                kind=deals.KIND,
                entity_id=deal_id,
                action="automation_skipped",
                version=deal.version,
                note=f"{action.kind}: the client is in the unwanted counterparty register",
            )
            return {"skipped": "counterparty blocked"}
    if isinstance(action, SetField | AddTags | RemoveTags | SetResponsible):
        patch = _patch(deal, action)
        new = await deals.patch_deal(
            uow, principal, deal_id, DealPatch.model_validate(patch), expected, deal
        )
        if held is not None:
            held.found = (new, False)  # visible: writable_deal or locked_deal said so
        return {"version": new.version, "patch": patch}
    if isinstance(action, MoveToStage):
        move = Move(stage_id=action.stage_id, reason=action.reason, lost_reason=action.lost_reason)
        new = await deals.move_in(uow, principal, deal_id, move, expected)
        if held is not None:
            held.found = (new, False)
        return {"version": new.version, "stage_id": str(new.stage_id)}
    if isinstance(action, CreateTask):
        return await _create_task(uow, principal, firing_id, action, deal)
    if isinstance(action, CreateDeal):
        return await _create_deal(uow, principal, firing_id, position, action, deal)
    if isinstance(action, ScheduleInteraction):
        return await _schedule_interaction(uow, firing_id, position, action, deal, interactions)
    return await _notify(uow, deal, firing_id, position, action, attempt)


async def _schedule_interaction(
    uow: UnitOfWork,
    firing_id: uuid.UUID,
    position: int,
    action: ScheduleInteraction,
    deal: Deal,
    interactions: Interactions | None,
) -> dict[str, Any]:
    """A planned contact in the interactions service, as the pipeline confined to the deal's
    directions, under the firing's and step's Idempotency-Key (a retry finds the same one)."""
    if interactions is None:
        raise ValueError(
            "no service token can be signed here (AUTH_PRIVATE_KEY_FILE is unset or names no file)"
        )
    step = await queries.step_of(uow.session, firing_id, position)
    body = step["detail"].get("request") if step is not None else None
    if body is None:  # the first attempt; a retry sends the very same request
        responsible = deal.responsible_employee_id
        if responsible is None:
            return {"skipped": "the deal has no responsible employee"}
        subject = try_render(title_template(action.subject), {"deal": deal_values(deal)})
        if isinstance(subject, str):
            raise ValueError(f"the subject cannot be rendered: {subject}")
        calendar = await queries.calendar_for(uow.session, deal.directions)
        days = action.due_in_working_days
        delay = Delay(amount=days, unit="working_days") if days else None
        due_at = calendar.due(await queries.now(uow.session), delay, at_working_time=True)
        body = {
            "organization_id": str(deal.organization_id),
            "kind": action.channel,
            "direction": "out",
            "status": "planned",
            "due_at": due_at.isoformat(),
            "responsible_employee_id": str(responsible),
            "subject": subject.subject,
            "notes": action.notes,
            "person_ids": [str(deal.primary_person_id)] if deal.primary_person_id else [],
            "deal_id": str(deal.id),
        }
    key = f"automation:{firing_id}:{position}"
    try:
        planned = await interactions.plan(body, deal.directions, key)
    except PeerRefused as exc:
        if not exc.blocked:
            raise
        await uow.audit(  # a contact person in the register: recorded, never planned
            kind=deals.KIND,
            entity_id=deal.id,
            action="automation_skipped",
            version=deal.version,
            note=f"{action.kind}: {exc}"[:2000],
        )
        return {"skipped": "counterparty blocked", "request": body}
    await uow.audit(
        kind=deals.KIND,
        entity_id=deal.id,
        action="automation_interaction_planned",
        version=deal.version,
        changes={"interaction_id": {"old": None, "new": str(planned["id"])}},
        note=body["subject"],
    )
    return {"interaction_id": str(planned["id"]), "request": body, "key": key}


def render_notice(action: Notify, deal: Deal, name: str, email: str) -> RenderedMessage | str:
    """The message for this deal and employee, or why it cannot be made (missing fields)."""
    template = action.template()
    context = {"deal": deal_values(deal), "employee": {"name": name, "email": email}}
    missing = template.missing(context)
    if missing:
        return "missing fields: " + ", ".join(missing)
    return try_render(template, context)


async def _create_task(
    uow: UnitOfWork, principal: Principal, firing_id: uuid.UUID, action: CreateTask, deal: Deal
) -> dict[str, Any]:
    """A task about the deal through the tasks' own service function (in this unit of work)."""
    session = uow.session
    if action.assignee.rule == "employee":
        assignee = action.assignee.employee_id
    elif action.assignee.rule == "round_robin":
        staff = await queries.active_employees(session, deal.directions)
        if not staff:
            return {"skipped": "no active employee in the deal's directions"}
        rule_id = await queries.firing_rule(session, firing_id)
        assignee = staff[await queries.next_turn(session, rule_id) % len(staff)]
    else:
        assignee = deal.responsible_employee_id
    if assignee is None:
        return {"skipped": "the deal has no responsible employee"}
    context = {"deal": deal_values(deal)}
    title = try_render(title_template(action.title), context)
    if isinstance(title, str):
        raise ValueError(f"the title cannot be rendered: {title}")
    calendar = await queries.calendar_for(session, deal.directions)
    deadline = calendar.due(await queries.now(session), action.deadline, at_working_time=False)
    draft = TaskDraft(
        title=title.subject,
        description=action.description,
        deadline=deadline,
        priority=action.priority,
        assignee_employee_id=assignee,
        deal_id=deal.id,
    )
    task = await tasks.create_task(principal=principal, draft=draft, uow=uow)
    return {
        "task_id": str(task.id),
        "assignee_employee_id": str(assignee),
        "deadline": deadline.isoformat(),
    }


async def _create_deal(
    uow: UnitOfWork,
    principal: Principal,
    firing_id: uuid.UUID,
    position: int,
    action: CreateDeal,
    deal: Deal,
) -> dict[str, Any]:
    """A deal for the client in another pipeline through the deals' own service function (in
    this unit of work; its id derived from the firing and the step: at most one)."""
    title = try_render(title_template(action.title), {"deal": deal_values(deal)})
    if isinstance(title, str):
        raise ValueError(f"the title cannot be rendered: {title}")
    copied = (
        deal.fields().model_dump(
            include={
                "amount",
                "currency",
                "responsible_employee_id",
                "person_ids",
                "primary_person_id",
            }
        )
        if action.copy_fields
        else {}
    )
    draft = DealDraft(
        **copied,
        title=title.subject,
        tags=action.tags,
        pipeline_id=action.pipeline_id,
        stage_id=action.stage_id,
        organization_id=deal.organization_id,
    )
    deal_id = uuid.uuid5(firing_id, f"create_deal:{position}")
    created = await deals.create_in(uow, principal, draft, deal_id)
    return {"deal_id": str(created.id), "pipeline_id": str(created.pipeline_id)}


def _patch(deal: Deal, action: Any) -> dict[str, Any]:
    if isinstance(action, SetField):
        return set_field_patch(deal, action.field, action.value)
    if isinstance(action, AddTags):
        return {"tags": list(dict.fromkeys([*deal.tags, *action.tags]))}
    if isinstance(action, RemoveTags):
        return {"tags": [tag for tag in deal.tags if tag not in action.tags]}
    return {"responsible_employee_id": str(action.employee_id)}


async def _notify(
    uow: UnitOfWork,
    deal: Deal,
    firing_id: uuid.UUID,
    position: int,
    action: Notify | Webhook,
    attempt: int,
) -> dict[str, Any]:
    """A delivery request to the notifier (idempotency key: the firing and the step)."""
    subject = action.subject
    if isinstance(action, Webhook):
        channel, recipient = Channel.WEBHOOK, Recipient(endpoint=action.endpoint)
        body: dict[str, Any] = {
            "text": f"deal {deal.id}",
            "data": {"deal": deal.model_dump(mode="json")},
        }
    else:
        employee_id = deal.responsible_employee_id
        employee = await clients.employee(uow.session, employee_id) if employee_id else None
        if employee is None or not employee.active:
            return {"skipped": "the deal has no active responsible employee"}
        channel = Channel(action.channel)
        recipient = Recipient(employee_id=str(employee_id), name=employee.name)
        rendered = render_notice(action, deal, employee.name, employee.email)
        if isinstance(rendered, str):  # never a half-filled message: recorded, not sent
            return {"skipped": rendered}
        subject = rendered.subject
        body = {"text": rendered.text, "data": {"deal_id": str(deal.id)}}
    key = request_key(firing_id, position, attempt)
    payload = NotificationRequested(
        idempotency_key=key,
        channel=channel,
        kind="automation",
        recipients=[recipient],
        subject=subject,
        **body,
    )
    uow.stage(
        uow.outbox.envelope(
            notification_requested(PIPELINE),
            payload,
            aggregate_id=str(deal.id),
            directions=deal.directions,
            actor=uow.actor,
        )
    )
    await uow.audit(
        kind=deals.KIND,
        entity_id=deal.id,
        action="automation_notified",
        version=deal.version,
        changes={"channel": {"old": None, "new": str(channel)}},
        note=action.subject,
    )
    return {"channel": str(channel), "idempotency_key": key, "attempt": attempt}


async def on_delivery_failed(
    session: AsyncSession,
    outbox: Outbox,
    firing_id: uuid.UUID,
    position: int,
    attempt: int,
    reason: str | None,
) -> None:
    """The notifier gave up delivering a rule's e-mail or webhook: the step is retried with
    back-off (a new request at the next attempt), or has failed for good after the last one;
    either way the error goes on the deal's timeline and in the run log. A result of an older
    attempt changes nothing."""
    step = await queries.step_of(session, firing_id, position)
    if step is None or step["kind"] not in ("notify", "webhook") or step["status"] != "done":
        return
    if int(step["detail"].get("attempt", 1)) != attempt:
        return
    rule = await queries.rule_version(session, step["rule_id"], step["rule_version"])
    assert rule is not None
    error = f"delivery failed (attempt {attempt}): {reason or 'no reason given'}"
    detail = {**step["detail"]}
    if attempt <= len(RETRY_BACKOFF_SECONDS):
        due_at = await queries.now(session) + timedelta(seconds=RETRY_BACKOFF_SECONDS[attempt - 1])
        await queries.reschedule(session, firing_id, position, due_at)
        detail |= {"next_attempt": attempt + 1, "retry_at": due_at.isoformat()}
        status, note = "retrying", f"{error}; retry at {due_at.isoformat()}"
    else:
        status, note = "failed", f"{error}; no attempts left"
    await queries.update_step(
        session,
        {
            "firing_id": firing_id,
            "position": position,
            "status": status,
            "error": error[:2000],
            "detail": detail,
        },
    )
    await UnitOfWork(session, outbox, audit_log, rule_actor(rule)).audit(
        kind=deals.KIND,
        entity_id=step["deal_id"],
        action="automation_failed",
        version=None,
        changes={"action": {"old": None, "new": step["kind"]}},
        note=note[:2000],
    )


# --- delayed actions -------------------------------------------------------------------------

PRUNE_SECONDS = 600.0
"""How often old trigger events are pruned."""

POLL_SECONDS = 0.25
"""The longest the scheduler sleeps: a delayed action runs within this of its due time."""

BUSY_SECONDS = 0.02
"""How soon the scheduler looks again when what is due after a drain is held by others (another
replica's batch, a deal an event is being applied to): not at once, in a loop."""


DUE_BATCH = 50
"""Due items (delayed actions, watched triggers) run in one transaction (one commit for several
when they pile up; few enough that the last one's commit follows its run closely)."""

DUE_WORKERS = 3
"""Batches of due items one replica runs at once (each in its own transaction and connection;
``SKIP LOCKED`` gives them different items): one batch's database round trips overlap
another's work."""

Result = TypeVar("Result")


class DueBatch(Protocol[Result]):
    """One batch of due items of one kind, taken in its transaction: how one runs (in its
    savepoint), how a broken one is recorded, what follows each (outside its savepoint) and
    what the batch writes at its end."""

    async def run(self, due: RowMapping, deal: tuple[Deal, bool] | None) -> Result: ...

    async def broke(self, due: RowMapping, error: str) -> Result: ...

    async def settle(self, due: RowMapping, result: Result, started: float) -> None: ...

    async def finish(self) -> None: ...


async def run_batch(
    sessions: async_sessionmaker[AsyncSession],
    begin: Callable[[AsyncSession], Awaitable[tuple[list[RowMapping], DueBatch[Result]]]],
) -> int:
    """Take a batch of due items (``begin``: taken with ``SKIP LOCKED``, and the batch's
    shared reads) and run each in a savepoint on its deal, the batch's deals read and locked
    in one query (in id order: two batches never wait on each other in a circle); one that
    breaks is recorded as broken and the others commit. How many were taken."""
    async with sessions() as session, session.begin():
        taken, batch = await begin(session)
        if not taken:
            return 0
        found = await queries.locked_deals(session, {due["deal_id"] for due in taken})
        for due in taken:
            started = time.perf_counter()
            deal = found.pop(due["deal_id"], None)  # a second item on it reads it again
            if deal is None:
                deal = await deal_queries.load(session, due["deal_id"], lock=True)
            try:
                async with session.begin_nested():
                    result = await batch.run(due, deal)
            except Exception as exc:  # a broken item never blocks the batch
                log.exception("a due automation item broke", due=dict(due))
                result = await batch.broke(due, repr(exc)[:2000])
            await batch.settle(due, result, started)
        await batch.finish()
    return len(taken)


async def drain_due(
    sessions: async_sessionmaker[AsyncSession],
    outbox: Outbox,
    interactions: Interactions | None = None,
) -> int:
    """Run due delayed actions and watched triggers until none is due: a batch of each kind
    first, then, once one came back full, ``DUE_WORKERS`` workers each taking a batch of each
    kind in turn; how many ran."""

    async def both() -> int:
        return await run_due(sessions, outbox, interactions) + await run_due_watches(
            sessions, outbox
        )

    ran = await run_due(sessions, outbox, interactions)
    watched = await run_due_watches(sessions, outbox)
    if max(ran, watched) < DUE_BATCH:
        return ran + watched
    counts = [0] * DUE_WORKERS

    async def worker(n: int) -> None:
        while done := await both():
            counts[n] += done

    async with asyncio.TaskGroup() as group:
        for n in range(DUE_WORKERS):
            group.create_task(worker(n))
    return ran + watched + sum(counts)


async def run_due(
    sessions: async_sessionmaker[AsyncSession],
    outbox: Outbox,
    interactions: Interactions | None = None,
) -> int:
    """Run a batch of due delayed actions (``run_batch``); how many ran. The rule's version
    that fired decides; its conditions are evaluated again on the deal as it is now and a
    disabled or deleted rule, a deleted deal or a condition no longer holding is a recorded
    skip. The batch reads its rules' state in one query, and writes its step records and
    schedule marks in one statement each."""

    async def begin(session: AsyncSession) -> tuple[list[RowMapping], DueBatch[Any]]:
        taken = await queries.take_due(session, DUE_BATCH)
        live = await queries.live_rules(session, {d["rule_id"] for d in taken}) if taken else set()
        return taken, _DelayedActions(session, outbox, interactions, live)

    return await run_batch(sessions, begin)


class _DelayedActions:
    """A batch of due delayed actions (``live``: those of its rules that are on)."""

    def __init__(
        self,
        session: AsyncSession,
        outbox: Outbox,
        interactions: Interactions | None,
        live: set[uuid.UUID],
    ) -> None:
        self.session, self.outbox, self.interactions, self.live = (
            session,
            outbox,
            interactions,
            live,
        )
        self.records: list[dict[str, Any]] = []
        self.done: list[tuple[uuid.UUID, int]] = []

    async def run(self, due: RowMapping, deal: tuple[Deal, bool] | None) -> dict[str, Any]:
        live = due["rule_id"] in self.live
        return await _run_one_due(self.session, self.outbox, due, live, deal, self.interactions)

    async def broke(self, due: RowMapping, error: str) -> dict[str, Any]:
        return {"status": "failed", "error": error, "detail": {}}

    async def settle(self, due: RowMapping, result: dict[str, Any], started: float) -> None:
        record = result | {"firing_id": due["firing_id"], "position": due["position"]}
        record["detail"] = {
            **record.get("detail", {}),
            "due_at": due["due_at"].isoformat(),
            "ran_at": datetime.now(UTC).isoformat(),
        }
        record.setdefault("duration_ms", elapsed_ms(started))
        record.setdefault("error", None)
        if await _retry(self.session, record) is None:
            self.done.append((due["firing_id"], due["position"]))
        self.records.append(record)

    async def finish(self) -> None:
        await queries.finish_due(self.session, self.records, self.done)


async def _retry(session: AsyncSession, record: dict[str, Any]) -> datetime | None:
    """A step whose peer was unavailable: rescheduled after its back-off (when), or failed
    for good after the last attempt (None)."""
    if record["status"] != "retrying":
        return None
    attempt = int(record["detail"].get("attempt", 1))
    if attempt > len(RETRY_BACKOFF_SECONDS):
        record["status"] = "failed"
        record["error"] = f"{record['error']}; no attempts left"[:2000]
        return None
    retry_at = await queries.now(session) + timedelta(seconds=RETRY_BACKOFF_SECONDS[attempt - 1])
    await queries.reschedule(session, record["firing_id"], record["position"], retry_at)
    record["detail"] |= {"next_attempt": attempt + 1, "retry_at": retry_at.isoformat()}
    return retry_at


async def _run_one_due(
    session: AsyncSession,
    outbox: Outbox,
    due: Any,
    live: bool,
    found: tuple[Deal, bool] | None,
    interactions: Interactions | None,
) -> dict[str, Any]:
    """One delayed step of a batch (``live``: its rule is on; ``found``: its deal, locked)."""
    firing_id, position = due["firing_id"], due["position"]
    rule = await queries.rule_version(session, due["rule_id"], due["rule_version"])
    assert rule is not None
    action = rule.actions[position]
    if not live:
        return {"status": "skipped", "detail": {"skipped": "the rule is off"}}
    if found is None or found[1] or found[0].deleted_at is not None:
        return {"status": "skipped", "detail": {"skipped": "the deal is gone"}}
    evaluation = evaluate(rule.conditions, deal_values(found[0]), due["trigger"])
    if not evaluation.passed:
        checks = [check.model_dump() for check in evaluation.checks]
        reason = "the conditions no longer hold"
        return {"status": "skipped", "detail": {"skipped": reason, "conditions": checks}}
    author = await queries.author_of(session, rule.id, rule.version)
    attempt = int(due["step_detail"].get("next_attempt", 1))
    return await _step(
        session,
        outbox,
        rule_actor(rule),
        rule_principal(rule, author),
        firing_id,
        position,
        action,
        found[0].id,
        attempt,
        interactions,
        held=Held(found[0].id, found),
    )


async def scheduler(
    sessions: async_sessionmaker[AsyncSession],
    outbox: Outbox,
    interactions: Interactions | None = None,
) -> None:
    """Run delayed actions and watched triggers as they fall due, until cancelled (every
    replica runs one; a due item is taken by one of them). An error is logged and the loop
    goes on."""
    prune_at = 0.0
    while True:
        try:
            async with sessions() as session:
                due_in, watch_in = await queries.seconds_to_next(session)
            ran = 0
            if (due_in is not None and due_in <= 0) or (watch_in is not None and watch_in <= 0):
                ran = await drain_due(sessions, outbox, interactions)
            if time.monotonic() >= prune_at:
                async with sessions() as session, session.begin():
                    await queries.forget_old_events(session)
                prune_at = time.monotonic() + PRUNE_SECONDS
            # something ran: look again at once; else sleep until the next due time (one a
            # replica is running right now counts as not due here, so no busy loop)
            later = [w for w in (due_in, watch_in) if w is not None and w > 0]
            wait = 0.0 if ran else min(later, default=None)
        except Exception:
            log.exception("delayed automation actions failed; retrying")
            wait = 1.0
        await asyncio.sleep(
            POLL_SECONDS if wait is None else min(max(wait, BUSY_SECONDS), POLL_SECONDS)
        )
