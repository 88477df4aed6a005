"""HTTP of the sales analytics: JSON or .xlsx."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.http.problems import invalid_field
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Depends, Query, Response

from clientele_pipeline.analytics import service
from clientele_pipeline.analytics.rules import Period, SalesReport, Window, window

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_WORKBOOK: dict[int | str, dict[str, Any]] = {
    200: {"content": {XLSX: {}}, "description": "the report as a workbook"}
}


def _window(
    date_from: Annotated[date | None, Query(description="first day (default: a year ago)")] = None,
    date_to: Annotated[
        date | None, Query(description="last day, inclusive (default: today)")
    ] = None,
    tz: Annotated[str, Query(max_length=64, description="IANA time zone of the days")] = "UTC",
    period: Annotated[
        Period, Query(description="how won deals and forecast are grouped")
    ] = "month",
) -> Window:
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # a folder of zones: OSError
        raise invalid_field("tz", "not an IANA time zone", location="query") from None
    try:
        return window(date_from, date_to, zone, period, datetime.now(UTC).astimezone(zone).date())
    except ValueError as exc:
        raise invalid_field("date_from", str(exc), location="query") from None


Span = Annotated[Window, Depends(_window)]


@router.get("/sales")
async def sales(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    span: Span,
    pipeline_id: uuid.UUID | None = None,
) -> SalesReport:
    """Funnel conversion and time in stage per pipeline, sales cycle, contacts per won deal,
    won deals per employee and period, monitoring, forecast; the caller's directions only."""
    return await service.sales_report(
        runtime=runtime, principal=principal, pipeline_id=pipeline_id, window=span
    )


@router.get("/sales.xlsx", response_class=Response, responses=_WORKBOOK)
async def sales_workbook(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    span: Span,
    pipeline_id: uuid.UUID | None = None,
) -> Response:
    """The same report as a workbook, one sheet per part (numbers as numbers, ids as text)."""
    body = await service.sales_workbook(
        runtime=runtime, principal=principal, pipeline_id=pipeline_id, window=span
    )
    name = f"clientele-sales-{span.date_from}-{span.date_to}.xlsx"
    return Response(
        body, media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
