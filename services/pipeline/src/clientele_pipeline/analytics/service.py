"""The sales report of the caller's directions: one read, several aggregates."""

from __future__ import annotations

import asyncio
import uuid

from clientele_shared.auth.principal import Principal
from clientele_shared.events.schemas.interactions import InteractionSnapshot
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import read_snapshot
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_pipeline.analytics import queries
from clientele_pipeline.analytics.rules import (
    ForecastRow,
    PipelineReport,
    SalesReport,
    StageTime,
    Window,
    WonRow,
    funnel,
    xlsx,
)
from clientele_pipeline.pipelines import service as pipelines
from clientele_pipeline.pipelines.rules import Pipeline

MAX_PIPELINES = 500


async def record_contact(session: AsyncSession, contact: InteractionSnapshot) -> None:
    """A contact that happened about a deal (interactions' event), once."""
    await queries.record_contact(session, contact)


async def _pipelines(
    runtime: ServiceRuntime, principal: Principal, pipeline_id: uuid.UUID | None
) -> list[Pipeline]:
    if pipeline_id is None:
        return await pipelines.list_pipelines(
            runtime=runtime, principal=principal, deleted=False, limit=MAX_PIPELINES
        )
    return [
        await pipelines.get_pipeline(
            runtime=runtime, principal=principal, pipeline_id=pipeline_id, include_deleted=False
        )
    ]


async def sales_report(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    pipeline_id: uuid.UUID | None,
    window: Window,
) -> SalesReport:
    """Funnel and time in stage per pipeline, won deals, cycle, contacts, monitoring and
    forecast, over the deals of the caller's directions (a pipeline it cannot see: 404)."""
    shown = await _pipelines(runtime, principal, pipeline_id)
    ids = [pipeline.id for pipeline in shown]
    async with runtime.sessions() as session, session.begin():
        await read_snapshot(session)
        reached = await queries.reached(session, principal, ids, window)
        stays = await queries.stays(session, principal, ids, window)
        won, total, cycle, contacts = await queries.won(session, principal, ids, window)
        watched = await queries.monitoring(session, principal, ids)
        forecast = await queries.forecast(session, principal, ids, window)
    reports = []
    for pipeline in shown:
        ordered = [
            (stage.id, stage.name, stage.kind, stage.position)
            for stage in pipeline.stages
            if stage.kind in ("open", "won")
        ]
        reports.append(
            PipelineReport(
                pipeline_id=pipeline.id,
                name=pipeline.name,
                funnel=funnel(ordered, reached.get(pipeline.id, {})),
                time_in_stage=[
                    StageTime(
                        stage_id=stage.id,
                        name=stage.name,
                        stays=stays[stage.id][0],
                        average_days=round(stays[stage.id][1], 2),
                    )
                    for stage in pipeline.stages
                    if stage.id in stays
                ],
                monitoring=watched.get(pipeline.id, 0),
            )
        )
    return SalesReport(
        date_from=window.date_from,
        date_to=window.date_to,
        time_zone=window.zone.key,
        period=window.period,
        pipelines=reports,
        won_deals=total,
        average_cycle_days=cycle,
        average_contacts_per_won_deal=contacts,
        won_by_employee=[WonRow.model_validate(row) for row in won],
        forecast=[ForecastRow.model_validate(row) for row in forecast],
    )


async def sales_workbook(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    pipeline_id: uuid.UUID | None,
    window: Window,
) -> bytes:
    """The report as .xlsx, rendered off the event loop."""
    report = await sales_report(
        runtime=runtime, principal=principal, pipeline_id=pipeline_id, window=window
    )
    return await asyncio.to_thread(xlsx, report)
