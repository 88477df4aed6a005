"""Automation operations: rules as versioned, audited data bound to a pipeline's directions;
manual runs, dry runs and the run log; the deal events that fire rules."""

from __future__ import annotations

import re
import secrets
import time
import uuid
from datetime import datetime
from typing import Any

from clientele_shared.auth.access import writable_directions
from clientele_shared.auth.principal import Principal, Role
from clientele_shared.events.envelope import Envelope
from clientele_shared.events.outbox import Outbox
from clientele_shared.events.topics import PIPELINE
from clientele_shared.http.concurrency import check_version, required_versions
from clientele_shared.http.problems import NotFound, ProblemError, invalid, invalid_field
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import (
    AuditEntry,
    UnitOfWork,
    Versioned,
    audit_trail,
    soft_delete_values,
    write_version,
)
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_pipeline.automation import engine, queries
from clientele_pipeline.automation.calendar import COMPANY, Calendar, CalendarSettings, Delay
from clientele_pipeline.automation.engine import backtest_one
from clientele_pipeline.automation.engine import rule_principal as rule_principal_of
from clientele_pipeline.automation.rules import (
    MAX_HOOK_BODY,
    Backtest,
    BacktestResult,
    CalendarBody,
    CreateTask,
    DryRun,
    DryRunResult,
    DuePreview,
    HookCall,
    HookSecret,
    MoveToStage,
    Notify,
    Preview,
    PreviewRequest,
    Rule,
    RuleDefinition,
    RuleDraft,
    RulePatch,
    Run,
    SetResponsible,
    automation_request,
    deal_values,
    delivery_occurrence,
    evaluate,
    hook_signed,
    interaction_occurrences,
    occurrences,
    patched,
    task_occurrences,
)
from clientele_pipeline.clients import service as clients
from clientele_pipeline.deals import queries as deal_queries
from clientele_pipeline.deals import service as deals
from clientele_pipeline.pipelines import service as pipelines
from clientele_pipeline.pipelines.rules import Pipeline
from clientele_pipeline.tables import audit_log, automation_rules

DIRECTION = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
KIND = "automation_rule"
RULE = Versioned(automation_rules, KIND)
_NOT_FOUND = "The rule does not exist."


def _author(principal: Principal) -> dict[str, Any]:
    return {
        "subject": principal.subject,
        "roles": sorted(principal.roles),
        "directions": sorted(principal.directions),
    }


def _checked(pipeline: Pipeline, definition: RuleDefinition) -> None:
    """The stages a rule names belong to its pipeline (422)."""
    stages = [("stage_id", definition.stage_id)]
    stages += [
        (f"actions.{i}.stage_id", a.stage_id)
        for i, a in enumerate(definition.actions)
        if isinstance(a, MoveToStage)
    ]
    trigger_stage = getattr(definition.trigger, "stage_id", None)
    stages.append(("trigger.stage_id", trigger_stage))
    for name, stage_id in stages:
        if stage_id is not None and pipeline.stage(stage_id) is None:
            raise invalid_field(name, "no such stage in the rule's pipeline", "unknown_reference")


def _employees_named(definition: RuleDefinition) -> dict[str, uuid.UUID]:
    """The employees a rule's actions name, by the field naming each."""
    named: dict[str, uuid.UUID] = {}
    for i, action in enumerate(definition.actions):
        if isinstance(action, SetResponsible):
            named[f"actions.{i}.employee_id"] = action.employee_id
        elif isinstance(action, CreateTask) and action.assignee.employee_id is not None:
            named[f"actions.{i}.assignee.employee_id"] = action.assignee.employee_id
    return named


async def _check_employees(
    session: AsyncSession,
    pipeline: Pipeline,
    definition: RuleDefinition,
    before: RuleDefinition | None = None,
) -> None:
    """The employees a rule's actions name are active and work in one of its pipeline's
    directions (422), as a deal's responsible employee must; those its version ``before``
    named already are not checked again (a rule whose employee left can still be paused)."""
    kept = set() if before is None else set(_employees_named(before).values())
    named = {k: v for k, v in _employees_named(definition).items() if v not in kept}
    if not named:
        return
    found = (await clients.references(session, employees=set(named.values()))).employees
    for name, employee_id in named.items():
        employee = found.get(employee_id)
        if employee is None or not employee.active:
            raise invalid_field(name, "no such active employee", "unknown_reference")
        if set(employee.directions).isdisjoint(pipeline.directions):
            raise invalid_field(
                name,
                "the employee does not work in the pipeline's directions",
                "direction_mismatch",
            )


def _stored(definition: RuleDefinition) -> dict[str, Any]:
    return definition.model_dump(mode="json", by_alias=True, exclude_none=True)


async def visible_rule(
    session: AsyncSession, principal: Principal, rule_id: uuid.UUID, *, lock: bool = False
) -> tuple[Rule, Pipeline]:
    """The live rule if the caller sees its pipeline (404 otherwise)."""
    rule = await queries.load(session, rule_id, lock=lock)
    if rule is None or rule.deleted_at is not None:
        raise NotFound(_NOT_FOUND)
    try:
        pipeline = await pipelines.visible_pipeline(
            session, principal, rule.pipeline_id, deleted=None
        )
    except NotFound:
        raise NotFound(_NOT_FOUND) from None
    return rule, pipeline


async def create_rule(*, runtime: ServiceRuntime, principal: Principal, draft: RuleDraft) -> Rule:
    """A rule on a pipeline the caller may write in all directions of (403), version 1."""
    rule_id = uuid.uuid4()
    definition = RuleDefinition.model_validate(draft.model_dump(exclude={"pipeline_id"}))
    async with pipelines.work(runtime, principal) as uow:
        try:
            pipeline = await pipelines.visible_pipeline(uow.session, principal, draft.pipeline_id)
        except NotFound:
            raise invalid_field("pipeline_id", "no such pipeline", "unknown_reference") from None
        writable_directions(principal, pipeline.directions)
        _checked(pipeline, definition)
        await _check_employees(uow.session, pipeline, definition)
        stored, author = _stored(definition), _author(principal)
        await queries.insert_rule(
            uow.session,
            {
                "id": rule_id,
                "pipeline_id": pipeline.id,
                "stage_id": definition.stage_id,
                "name": definition.name,
                "enabled": definition.enabled,
                "definition": stored,
                "author_subject": principal.subject,
                "author": author,
                "version": 1,
                "created_by": principal.subject,
                "updated_by": principal.subject,
            },
        )
        await queries.insert_version(uow.session, rule_id, 1, stored, author)
        await uow.audit(
            kind=KIND, entity_id=rule_id, action="created", version=1, changes={"new": stored}
        )
        rule = await queries.load(uow.session, rule_id)
        assert rule is not None
        await engine.watch_pipeline(uow.session, rule)
    return rule


async def get_rule(*, runtime: ServiceRuntime, principal: Principal, rule_id: uuid.UUID) -> Rule:
    async with runtime.sessions() as session:
        return (await visible_rule(session, principal, rule_id))[0]


async def list_rules(
    *, runtime: ServiceRuntime, principal: Principal, pipeline_id: uuid.UUID | None
) -> list[Rule]:
    """Rules of the pipelines the caller sees."""
    async with runtime.sessions() as session:
        found = await queries.list_rules(session, pipeline_id)
        visible: dict[uuid.UUID, bool] = {}
        for rule in found:
            if rule.pipeline_id not in visible:
                try:
                    await pipelines.visible_pipeline(
                        session, principal, rule.pipeline_id, deleted=None
                    )
                    visible[rule.pipeline_id] = True
                except NotFound:
                    visible[rule.pipeline_id] = False
        return [rule for rule in found if visible[rule.pipeline_id]]


async def _locked(
    uow: UnitOfWork, principal: Principal, rule_id: uuid.UUID
) -> tuple[Rule, Pipeline]:
    rule, pipeline = await visible_rule(uow.session, principal, rule_id, lock=True)
    writable_directions(principal, pipeline.directions)
    return rule, pipeline


async def update_rule(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    rule_id: uuid.UUID,
    patch: RulePatch,
    expected: set[int],
) -> Rule:
    """A new version of the rule (the editor becomes its author: it acts within their
    directions); the old version stays for the firings that used it."""
    async with pipelines.work(runtime, principal) as uow:
        current, pipeline = await _locked(uow, principal, rule_id)
        try:
            definition = patched(current.definition(), patch)
        except ValidationError as exc:
            raise invalid([dict(error) for error in exc.errors(include_url=False)]) from None
        _checked(pipeline, definition)
        await _check_employees(uow.session, pipeline, definition, current.definition())
        before, stored, author = (
            _stored(current.definition()),
            _stored(definition),
            _author(principal),
        )
        changes = {
            name: {"old": before.get(name), "new": stored.get(name)}
            for name in sorted({*before, *stored})
            if before.get(name) != stored.get(name)
        }
        version = await write_version(
            uow,
            RULE,
            rule_id,
            current=current.version,
            expected=expected,
            values={
                "stage_id": definition.stage_id,
                "name": definition.name,
                "enabled": definition.enabled,
                "definition": stored,
                "author_subject": principal.subject,
                "author": author,
            },
            action="updated",
            changes=changes,
        )
        await queries.insert_version(uow.session, rule_id, version, stored, author)
        rule = await queries.load(uow.session, rule_id)
        assert rule is not None
        await engine.watch_pipeline(uow.session, rule)
    return rule


async def delete_rule(
    *, runtime: ServiceRuntime, principal: Principal, rule_id: uuid.UUID, expected: set[int]
) -> int:
    async with pipelines.work(runtime, principal) as uow:
        current, _ = await _locked(uow, principal, rule_id)
        await queries.drop_watches(uow.session, rule_id=rule_id)
        return await write_version(
            uow,
            RULE,
            rule_id,
            current=current.version,
            expected=expected,
            values={**soft_delete_values(principal.subject), "enabled": False},
            action="deleted",
        )


async def rule_audit(
    *, runtime: ServiceRuntime, principal: Principal, rule_id: uuid.UUID
) -> list[AuditEntry]:
    async with runtime.sessions() as session:
        await visible_rule(session, principal, rule_id)
        return await audit_trail(session, audit_log, KIND, rule_id)


async def rule_runs(
    *, runtime: ServiceRuntime, principal: Principal, rule_id: uuid.UUID, limit: int
) -> list[Run]:
    async with runtime.sessions() as session:
        await visible_rule(session, principal, rule_id)
        return await queries.runs(session, rule_id=rule_id, limit=limit)


async def deal_runs(
    *, runtime: ServiceRuntime, principal: Principal, deal_id: uuid.UUID, limit: int
) -> list[Run]:
    async with runtime.sessions() as session:
        await deals.visible_deal(session, principal, deal_id, deleted=None)
        return await queries.runs(session, deal_id=deal_id, limit=limit)


async def run_manually(
    *, runtime: ServiceRuntime, principal: Principal, rule_id: uuid.UUID, deal_id: uuid.UUID
) -> Run:
    """Fire a manual rule for a deal of its pipeline (the caller must be able to change the
    deal; the rule acts within its author's directions)."""
    async with pipelines.work(runtime, principal) as uow:
        rule, _ = await _locked(uow, principal, rule_id)
        deal = await deals.locked_deal(uow, principal, deal_id)
        if rule.trigger.kind != "manual" or not rule.enabled:
            raise invalid_field("rule_id", "not an enabled rule with a manual trigger")
        if deal.pipeline_id != rule.pipeline_id:
            raise invalid_field("deal_id", "the deal is not in the rule's pipeline")
        event = {"kind": "manual", "by": principal.subject}
        firing_id = await engine.fire(
            uow.session, uow.outbox, rule, deal_id, uuid.uuid4(), event, []
        )
        assert firing_id is not None  # a new event id: never fired before
        found = await queries.runs(uow.session, firing_id=firing_id)
    return found[0]


async def dry_run(
    *, runtime: ServiceRuntime, principal: Principal, rule_id: uuid.UUID, dry: DryRun
) -> DryRunResult:
    """What the rule would do for the deal if its trigger's event happened now: each
    condition's result and the actions, nothing written."""
    async with runtime.sessions() as session:
        rule, _ = await visible_rule(session, principal, rule_id)
        deal = await deals.visible_deal(session, principal, dry.deal_id)
    event = dry.event if dry.event is not None else {"kind": rule.trigger.kind}
    evaluation = evaluate(rule.conditions, deal_values(deal), event)
    reason = None
    if deal.pipeline_id != rule.pipeline_id:
        reason = "the deal is not in the rule's pipeline"
    elif not rule.enabled:
        reason = "the rule is disabled"
    elif not evaluation.passed:
        reason = "conditions not met"
    return DryRunResult(
        would_fire=reason is None,
        reason=reason,
        conditions=evaluation.checks,
        actions=[action.model_dump(mode="json", by_alias=True) for action in rule.actions],
    )


async def backtest(
    *, runtime: ServiceRuntime, principal: Principal, rule_id: uuid.UUID, last: int
) -> Backtest:
    """The rule (enabled or not) against its pipeline's last ``last`` trigger events: which
    it would fire on and each condition's result on the deal as it is now; nothing written,
    nothing sent. Events of deals the caller or the rule's author cannot see are left out."""
    async with runtime.sessions() as session:
        rule, _ = await visible_rule(session, principal, rule_id)
        author = rule_principal_of(rule, await queries.author_of(session, rule.id, rule.version))
        events = await queries.recent_events(session, rule.pipeline_id, last)
        results: list[BacktestResult] = []
        deals_now: dict[uuid.UUID, Any] = {}
        for row in events:
            if row["deal_id"] not in deals_now:
                found = await deal_queries.load(session, row["deal_id"])
                deals_now[row["deal_id"]] = found[0] if found else None
            deal = deals_now[row["deal_id"]]
            if deal is None or not (
                principal.can_see(deal.directions) and author.can_see(deal.directions)
            ):
                continue
            results.append(backtest_one(rule, row, deal))
    return Backtest(
        rule_id=rule.id,
        rule_version=rule.version,
        events=len(results),
        would_fire=sum(result.would_fire for result in results),
        results=results,
    )


async def preview(
    *, runtime: ServiceRuntime, principal: Principal, rule_id: uuid.UUID, request: PreviewRequest
) -> Preview:
    """A rule's message rendered for a deal and its responsible employee; a field the deal
    lacks is a 422 naming it (at run time such a message is skipped, never sent half-filled)."""
    async with runtime.sessions() as session:
        rule, _ = await visible_rule(session, principal, rule_id)
        deal = await deals.visible_deal(session, principal, request.deal_id)
        if request.position >= len(rule.actions) or not isinstance(
            action := rule.actions[request.position], Notify
        ):
            raise invalid_field("position", "not a notify action of the rule")
        employee_id = deal.responsible_employee_id
        employee = await clients.employee(session, employee_id) if employee_id else None
    if employee is None:
        raise invalid_field("deal_id", "the deal has no responsible employee to write to")
    rendered = engine.render_notice(action, deal, employee.name, employee.email)
    if isinstance(rendered, str):
        raise invalid_field("deal_id", rendered, "missing_field")
    return Preview(subject=rendered.subject, text=rendered.text)


# --- business calendars (ADR 34) -------------------------------------------------------------

CALENDAR_KIND = "business_calendar"
_NO_CALENDAR = "The calendar does not exist."


def _calendar_entity(scope: str) -> uuid.UUID:
    """The audit trail's id of a calendar (calendars are keyed by their scope)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"clientele:automation-calendar:{scope}")


def _seen(principal: Principal, scope: str) -> None:
    """The company's calendar is everybody's; a direction's is seen by who sees it (404)."""
    if scope != COMPANY and (DIRECTION.fullmatch(scope) is None or not principal.can_see([scope])):
        raise NotFound(_NO_CALENDAR)


def _stored_or_default(stored: Calendar | None, scope: str) -> Calendar:
    if stored is not None:
        return stored
    return Calendar(scope=scope, settings=CalendarSettings() if scope == COMPANY else None)


async def list_calendars(*, runtime: ServiceRuntime, principal: Principal) -> list[Calendar]:
    """The company's calendar and the stored ones of the directions the caller sees."""
    async with runtime.sessions() as session:
        found = await queries.calendars(session)
    company = next((c for c in found if c.scope == COMPANY), None)
    return [
        _stored_or_default(company, COMPANY),
        *(c for c in found if c.scope != COMPANY and principal.can_see([c.scope])),
    ]


async def get_calendar(*, runtime: ServiceRuntime, principal: Principal, scope: str) -> Calendar:
    _seen(principal, scope)
    async with runtime.sessions() as session:
        return _stored_or_default(await queries.load_calendar(session, scope), scope)


async def put_calendar(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    scope: str,
    body: CalendarBody,
    if_match: str | None,
) -> Calendar:
    """Replace a calendar (the company's: admins; a direction's: who writes in it, 403).
    Creating one needs no If-Match; replacing one does (428, 412 when stale)."""
    _seen(principal, scope)
    if scope == COMPANY:
        if not (principal.is_service or principal.has_role(Role.ADMIN)):
            raise ProblemError(
                403,
                "Forbidden",
                "Only an administrator changes the company's calendar.",
                kind="forbidden",
            )
    else:
        writable_directions(principal, [scope])
    if scope == COMPANY and body.settings is None:
        body = body.model_copy(update={"settings": CalendarSettings()})
    async with pipelines.work(runtime, principal) as uow:
        current = await queries.load_calendar(uow.session, scope, lock=True)
        if current is not None:
            check_version(required_versions(if_match), current.version)
        version = 1 if current is None else current.version + 1
        stored = body.model_dump(mode="json")
        before = (
            {} if current is None else current.model_dump(mode="json", include={"settings", "days"})
        )
        await queries.save_calendar(
            uow.session,
            {"scope": scope, **stored, "version": version, "updated_by": principal.subject},
        )
        await uow.audit(
            kind=CALENDAR_KIND,
            entity_id=_calendar_entity(scope),
            action="created" if current is None else "updated",
            version=version,
            changes={
                name: {"old": before.get(name), "new": stored[name]}
                for name in stored
                if before.get(name) != stored[name]
            },
            note=scope,
        )
        saved = await queries.load_calendar(uow.session, scope)
    assert saved is not None
    return saved


async def calendar_audit(
    *, runtime: ServiceRuntime, principal: Principal, scope: str
) -> list[AuditEntry]:
    _seen(principal, scope)
    async with runtime.sessions() as session:
        return await audit_trail(session, audit_log, CALENDAR_KIND, _calendar_entity(scope))


async def due_preview(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    scope: str,
    start: datetime,
    delay: Delay | None,
    at_working_time: bool,
) -> DuePreview:
    """When an action delayed so from ``start`` would be due under the scope's calendar."""
    _seen(principal, scope)
    async with runtime.sessions() as session:
        calendar = await queries.calendar_for(session, [] if scope == COMPANY else [scope])
    due_at = calendar.due(start, delay, at_working_time=at_working_time)
    return DuePreview(due_at=due_at, timezone=calendar.settings.timezone)


# --- inbound webhooks ------------------------------------------------------------------------


def _hook_caller(rule_id: uuid.UUID) -> Principal:
    """Who the audit trail names for an inbound webhook call (the caller has no account)."""
    return Principal(subject=f"hook:{rule_id}", kind="service", service="pipeline")


async def issue_hook_secret(
    *, runtime: ServiceRuntime, principal: Principal, rule_id: uuid.UUID
) -> HookSecret:
    """A new secret for the rule's inbound webhook (the old one stops working); shown once."""
    secret = secrets.token_urlsafe(32)
    async with pipelines.work(runtime, principal) as uow:
        rule, _ = await _locked(uow, principal, rule_id)
        if rule.trigger.kind != "inbound_webhook":
            raise invalid_field("rule_id", "not a rule with an inbound webhook trigger")
        await queries.set_hook_secret(uow.session, rule_id, secret)
        await uow.audit(
            kind=KIND, entity_id=rule_id, action="webhook_secret_issued", version=rule.version
        )
    return HookSecret(secret=secret, url=f"/v1/public/automation/hooks/{rule_id}")


async def call_hook(
    *,
    runtime: ServiceRuntime,
    rule_id: uuid.UUID,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
) -> Run:
    """Fire an inbound webhook rule for the deal the signed call names; the same signed call
    again answers the same firing (nothing runs twice)."""
    refused = ProblemError(
        401,
        "Unauthorized",
        "No enabled rule takes this call, or the signature or its time is wrong.",
        kind="bad-signature",
    )
    if len(body) > MAX_HOOK_BODY:
        raise invalid_field("body", f"at most {MAX_HOOK_BODY} bytes")
    async with pipelines.work(runtime, _hook_caller(rule_id)) as uow:
        secret = await queries.hook_secret(uow.session, rule_id)
        if secret is None or not hook_signed(secret, timestamp, signature, body, time.time()):
            raise refused
        try:
            call = HookCall.model_validate_json(body)
        except ValidationError as exc:
            raise invalid([dict(error) for error in exc.errors(include_url=False)]) from None
        rule = await queries.load(uow.session, rule_id, lock=True)
        assert rule is not None
        found = await deal_queries.load(uow.session, call.deal_id, lock=True)
        if (
            found is None
            or found[0].deleted_at is not None
            or found[0].pipeline_id != (rule.pipeline_id)
        ):
            raise invalid_field(
                "deal_id", "no such deal in the rule's pipeline", "unknown_reference"
            )
        event_id = uuid.uuid5(uuid.NAMESPACE_URL, f"automation-hook:{rule_id}:{signature}")
        event = {"kind": "inbound_webhook", "data": call.data}
        firing_id = await engine.fire(
            uow.session, uow.outbox, rule, call.deal_id, event_id, event, []
        )
        if firing_id is None:
            firing_id = await queries.firing_of(uow.session, rule.id, rule.version, event_id)
        found_runs = await queries.runs(uow.session, firing_id=firing_id)
    return found_runs[0]


class InteractionTriggers:
    """Interactions' events: a contact with a deal logged (or a planned one completed) is
    activity on the deal and fires the `interaction_logged` rules."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def __call__(self, session: AsyncSession, envelope: Envelope, payload: BaseModel) -> None:
        found = interaction_occurrences(
            envelope.type, envelope.event_id, payload.model_dump(mode="json")
        )
        if not found:
            return
        await engine.on_occurrences(
            session,
            self.outbox,
            found,
            envelope.causation_id,
            envelope.occurred_at,
            envelope.type,
            activity=True,
        )


class DeliveryTriggers:
    """The notifier's results of the requests rules made: fire `delivery_result` rules on the
    deal the request was for; the causation chain is the requesting firing's (a rule answering
    its own e-mail's bounce with another e-mail is a loop)."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def __call__(self, session: AsyncSession, envelope: Envelope, payload: BaseModel) -> None:
        values = payload.model_dump(mode="json")
        request = automation_request(str(values.get("idempotency_key", "")))
        if values.get("requester") != PIPELINE or request is None or "channel" not in values:
            return
        deal_id = await queries.firing_deal(session, request[0])
        if deal_id is None:
            return
        if envelope.type == "notifier.delivery.failed":
            await engine.on_delivery_failed(
                session, self.outbox, request[0], request[1], request[2], values.get("reason")
            )
        occurrence = delivery_occurrence(envelope.type, envelope.event_id, values, deal_id)
        await engine.on_occurrences(
            session, self.outbox, [occurrence], str(request[0]), envelope.occurred_at, envelope.type
        )


class TaskTriggers:
    """The pipeline's task events: a task about a deal completed or overdue fires the
    `task_completed`/`task_overdue` rules and counts as activity on the deal."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def __call__(self, session: AsyncSession, envelope: Envelope, payload: BaseModel) -> None:
        found = task_occurrences(envelope.type, envelope.event_id, payload.model_dump(mode="json"))
        if not found:
            return
        await engine.on_occurrences(
            session,
            self.outbox,
            found,
            envelope.causation_id,
            envelope.occurred_at,
            envelope.type,
            activity=True,
        )


class DealEvents:
    """The pipeline's own deal events, consumed through the inbox a batch at a time: each
    re-times the deal's watches and fires the matching rules, in the inbox's transaction (so
    a redelivered event never fires twice), the batch's events together (ADR 54)."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def __call__(
        self, session: AsyncSession, events: list[tuple[Envelope, BaseModel]]
    ) -> None:
        triggers = []
        for envelope, payload in events:
            values = payload.model_dump(mode="json")
            by_rule = envelope.actor is not None and envelope.actor.kind == "automation"
            deal_id = uuid.UUID(str(values["deal_id"]))
            triggers.append(
                engine.Trigger(
                    deal_id,
                    occurrences(envelope.type, envelope.event_id, values),
                    envelope.causation_id,
                    envelope.occurred_at,
                    envelope.type,
                    activity=not by_rule,
                    envelope=envelope,
                )
            )
        await engine.on_triggers(session, self.outbox, triggers)
