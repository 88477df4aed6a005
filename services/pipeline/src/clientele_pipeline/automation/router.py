"""HTTP of automation rules: CRUD (versioned, If-Match), the JSON Schema, runs, dry runs."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.http.concurrency import IfMatch, etag, required_versions
from clientele_shared.runtime import CurrentRuntime
from clientele_shared.service_layer import AuditEntry
from fastapi import APIRouter, Header, Path, Query, Request, Response, status
from pydantic import AwareDatetime

from clientele_pipeline.automation import service
from clientele_pipeline.automation.calendar import Calendar, Delay, Unit
from clientele_pipeline.automation.rules import (
    Backtest,
    BacktestRequest,
    CalendarBody,
    DryRun,
    DryRunResult,
    DuePreview,
    HookSecret,
    ManualRun,
    Rule,
    RuleDraft,
    RulePatch,
    Run,
)

router = APIRouter(tags=["automation"])
RULES = "/v1/automation/rules"
Limit = Annotated[int, Query(ge=1, le=500)]


def _tagged(response: Response, rule: Rule) -> Rule:
    response.headers["ETag"] = etag(rule.version)
    return rule


@router.get(RULES + "/schema")
async def rule_schema(_: CurrentPrincipal) -> dict[str, Any]:
    """The JSON Schema every rule is validated against."""
    return RuleDraft.model_json_schema(by_alias=True)


@router.post(RULES, status_code=status.HTTP_201_CREATED)
async def create_rule(
    draft: RuleDraft, principal: CurrentPrincipal, runtime: CurrentRuntime, response: Response
) -> Rule:
    """A rule on a pipeline the caller may write (403 outside its directions)."""
    rule = await service.create_rule(runtime=runtime, principal=principal, draft=draft)
    response.headers["Location"] = f"{RULES}/{rule.id}"
    return _tagged(response, rule)


@router.get(RULES)
async def list_rules(
    principal: CurrentPrincipal, runtime: CurrentRuntime, pipeline_id: uuid.UUID | None = None
) -> list[Rule]:
    return await service.list_rules(runtime=runtime, principal=principal, pipeline_id=pipeline_id)


@router.get(RULES + "/{rule_id}")
async def get_rule(
    rule_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime, response: Response
) -> Rule:
    return _tagged(
        response, await service.get_rule(runtime=runtime, principal=principal, rule_id=rule_id)
    )


@router.patch(RULES + "/{rule_id}")
async def update_rule(
    rule_id: uuid.UUID,
    patch: RulePatch,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Rule:
    """JSON merge patch: a new version (If-Match: 428 without, 412 stale)."""
    rule = await service.update_rule(
        runtime=runtime,
        principal=principal,
        rule_id=rule_id,
        patch=patch,
        expected=required_versions(if_match),
    )
    return _tagged(response, rule)


@router.delete(RULES + "/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_rule(
    rule_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> None:
    version = await service.delete_rule(
        runtime=runtime, principal=principal, rule_id=rule_id, expected=required_versions(if_match)
    )
    response.headers["ETag"] = etag(version)


@router.get(RULES + "/{rule_id}/audit")
async def rule_audit(
    rule_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> list[AuditEntry]:
    return await service.rule_audit(runtime=runtime, principal=principal, rule_id=rule_id)


@router.get(RULES + "/{rule_id}/runs")
async def rule_runs(
    rule_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime, limit: Limit = 100
) -> list[Run]:
    """The rule's firings, newest first: trigger, conditions with results, steps, durations."""
    return await service.rule_runs(
        runtime=runtime, principal=principal, rule_id=rule_id, limit=limit
    )


@router.post(RULES + "/{rule_id}/run")
async def run_rule(
    rule_id: uuid.UUID, run: ManualRun, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> Run:
    """Fire a rule with a manual trigger for a deal now."""
    return await service.run_manually(
        runtime=runtime, principal=principal, rule_id=rule_id, deal_id=run.deal_id
    )


@router.post(RULES + "/{rule_id}/dry-run")
async def dry_run(
    rule_id: uuid.UUID, dry: DryRun, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> DryRunResult:
    """Would the rule fire for this deal if its event happened now? No side effects."""
    return await service.dry_run(runtime=runtime, principal=principal, rule_id=rule_id, dry=dry)


@router.post(RULES + "/{rule_id}/backtest")
async def backtest(
    rule_id: uuid.UUID, body: BacktestRequest, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> Backtest:
    """The rule (enabled or not) against its pipeline's last `last` trigger events: which it
    would fire on, with each condition's result; no side effects."""
    return await service.backtest(
        runtime=runtime, principal=principal, rule_id=rule_id, last=body.last
    )


@router.get("/v1/deals/{deal_id}/automation-runs")
async def deal_runs(
    deal_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime, limit: Limit = 100
) -> list[Run]:
    """The automation firings for this deal, newest first."""
    return await service.deal_runs(
        runtime=runtime, principal=principal, deal_id=deal_id, limit=limit
    )


CALENDARS = "/v1/automation/calendars"
Scope = Annotated[str, Path(max_length=64, description="`*` (the company) or a direction")]


def _calendar_tagged(response: Response, calendar: Calendar) -> Calendar:
    response.headers["ETag"] = etag(calendar.version)
    return calendar


@router.get(CALENDARS)
async def list_calendars(principal: CurrentPrincipal, runtime: CurrentRuntime) -> list[Calendar]:
    """The company's business calendar and those of the directions the caller sees."""
    return await service.list_calendars(runtime=runtime, principal=principal)


@router.get(CALENDARS + "/{scope}")
async def get_calendar(
    scope: Scope, principal: CurrentPrincipal, runtime: CurrentRuntime, response: Response
) -> Calendar:
    calendar = await service.get_calendar(runtime=runtime, principal=principal, scope=scope)
    return _calendar_tagged(response, calendar)


@router.put(CALENDARS + "/{scope}")
async def put_calendar(
    scope: Scope,
    body: CalendarBody,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Calendar:
    """Working week, hours, time zone, public holidays' country and own days (If-Match to
    replace an existing calendar)."""
    calendar = await service.put_calendar(
        runtime=runtime, principal=principal, scope=scope, body=body, if_match=if_match
    )
    return _calendar_tagged(response, calendar)


@router.get(CALENDARS + "/{scope}/audit")
async def calendar_audit(
    scope: Scope, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> list[AuditEntry]:
    return await service.calendar_audit(runtime=runtime, principal=principal, scope=scope)


@router.get(CALENDARS + "/{scope}/due")
async def due_preview(
    scope: Scope,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    start: Annotated[AwareDatetime, Query(alias="from")],
    amount: Annotated[int, Query(ge=0, le=366 * 24 * 60)] = 0,
    unit: Unit = "minutes",
    at_working_time: bool = False,
) -> DuePreview:
    """When an action delayed by `amount` `unit` from `from` would be due (the scope's
    calendar over the company's)."""
    return await service.due_preview(
        runtime=runtime,
        principal=principal,
        scope=scope,
        start=start,
        delay=Delay(amount=amount, unit=unit) if amount else None,
        at_working_time=at_working_time,
    )


@router.post(RULES + "/{rule_id}/webhook-secret")
async def issue_hook_secret(
    rule_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> HookSecret:
    """A new secret for an inbound webhook rule (shown once; the old one stops working)."""
    return await service.issue_hook_secret(runtime=runtime, principal=principal, rule_id=rule_id)


@router.post("/v1/public/automation/hooks/{rule_id}")
async def inbound_hook(
    rule_id: uuid.UUID,
    request: Request,
    runtime: CurrentRuntime,
    x_clientele_timestamp: Annotated[str | None, Header()] = None,
    x_clientele_signature: Annotated[str | None, Header()] = None,
) -> Run:
    """An inbound webhook call (no token: signed with the rule's secret, HMAC-SHA256 of
    `<timestamp>.<body>`): `{"deal_id", "data"}` fires the rule for the deal."""
    return await service.call_hook(
        runtime=runtime,
        rule_id=rule_id,
        body=await request.body(),
        timestamp=x_clientele_timestamp,
        signature=x_clientele_signature,
    )
