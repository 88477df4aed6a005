"""The sales report's shape, its period, and its .xlsx rendering (no I/O)."""

from __future__ import annotations

import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from pydantic import BaseModel

Period = Literal["week", "month", "quarter", "year"]
DEFAULT_DAYS = 365


@dataclass(frozen=True)
class Window:
    """The report's dates, from and to inclusive, in a time zone; and how to group by period."""

    date_from: date
    date_to: date
    zone: ZoneInfo
    period: Period

    @property
    def start(self) -> datetime:
        return datetime.combine(self.date_from, time(), self.zone)

    @property
    def end(self) -> datetime:
        """Exclusive: the midnight after ``date_to``."""
        return datetime.combine(self.date_to + timedelta(days=1), time(), self.zone)


Span = tuple[datetime, datetime]
Days = tuple[date, date]


def split(start: datetime, end: datetime) -> tuple[Days | None, list[Span]]:
    """The whole UTC days within [start, end) (first, exclusive last), and the partial spans
    left at its edges: the analytics' totals are kept per UTC day (ADR 44)."""
    since, until = start.astimezone(UTC), end.astimezone(UTC)
    first = since.date() if since.timetz() == time(tzinfo=UTC) else since.date() + timedelta(1)
    last = until.date()
    if first >= last:
        return None, [(start, end)]
    midnights = (datetime.combine(first, time(), UTC), datetime.combine(last, time(), UTC))
    edges = [(start, midnights[0]), (midnights[1], end)]
    return (first, last), [(a, b) for a, b in edges if a < b]


def window(
    date_from: date | None, date_to: date | None, zone: ZoneInfo, period: Period, today: date
) -> Window:
    """The dates asked for; by default the year up to today. ``ValueError`` when reversed."""
    end = date_to or today
    start = date_from or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise ValueError("date_from is after date_to")
    return Window(start, end, zone, period)


class FunnelStage(BaseModel):
    stage_id: uuid.UUID
    name: str
    kind: str
    reached: int
    """Deals created in the window that entered this stage or a later open or won one."""
    conversion: float | None
    """Share of the previous stage's deals that reached this one."""
    from_first: float | None
    """Share of the first stage's deals that reached this one."""


class StageTime(BaseModel):
    stage_id: uuid.UUID
    name: str
    stays: int
    """Stays in the stage that ended in the window (from the stage history)."""
    average_days: float


class PipelineReport(BaseModel):
    pipeline_id: uuid.UUID
    name: str
    funnel: list[FunnelStage]
    time_in_stage: list[StageTime]
    monitoring: int
    """Open deals now in a monitoring stage (potential clients kept under watch)."""


class WonRow(BaseModel):
    employee_id: uuid.UUID | None
    employee_name: str | None
    period: date
    currency: str | None
    count: int
    amount: Decimal


class ForecastRow(BaseModel):
    period: date
    currency: str
    deals: int
    amount: Decimal
    """Open deals expected to close in the period: amount x the stage's probability."""


class SalesReport(BaseModel):
    date_from: date
    date_to: date
    time_zone: str
    period: Period
    pipelines: list[PipelineReport]
    won_deals: int
    average_cycle_days: float | None
    """From a deal's creation to its (last) win, over the deals won in the window."""
    average_contacts_per_won_deal: float | None
    """Contacts logged about those deals (interactions' events)."""
    won_by_employee: list[WonRow]
    forecast: list[ForecastRow]


def funnel(
    stages: Sequence[tuple[uuid.UUID, str, str, int]], reached_at: dict[int, int]
) -> list[FunnelStage]:
    """The funnel of a pipeline's open and won ``stages`` (id, name, kind, position) in order,
    from how many deals got at most as far as each position."""
    rows: list[FunnelStage] = []
    first: int | None = None
    previous: int | None = None
    for stage_id, name, kind, position in stages:
        reached = sum(n for at, n in reached_at.items() if at >= position)
        first = reached if first is None else first
        rows.append(
            FunnelStage(
                stage_id=stage_id,
                name=name,
                kind=kind,
                reached=reached,
                conversion=round(reached / previous, 4) if previous else None,
                from_first=round(reached / first, 4) if first else None,
            )
        )
        previous = reached
    return rows


def xlsx(report: SalesReport) -> bytes:
    """The report as a workbook, one sheet per part: numbers as numbers, ids as text."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Funnel")
    sheet.append(
        [
            "pipeline_id",
            "pipeline",
            "stage_id",
            "stage",
            "kind",
            "reached",
            "conversion",
            "from_first",
        ]
    )
    for pipeline in report.pipelines:
        for row in pipeline.funnel:
            sheet.append(
                [
                    str(pipeline.pipeline_id),
                    pipeline.name,
                    str(row.stage_id),
                    row.name,
                    row.kind,
                    row.reached,
                    row.conversion,
                    row.from_first,
                ]
            )
    sheet = book.create_sheet("Time in stage")
    sheet.append(["pipeline_id", "pipeline", "stage_id", "stage", "stays", "average_days"])
    for pipeline in report.pipelines:
        for stay in pipeline.time_in_stage:
            sheet.append(
                [
                    str(pipeline.pipeline_id),
                    pipeline.name,
                    str(stay.stage_id),
                    stay.name,
                    stay.stays,
                    stay.average_days,
                ]
            )
    sheet = book.create_sheet("Monitoring")
    sheet.append(["pipeline_id", "pipeline", "deals"])
    for pipeline in report.pipelines:
        sheet.append([str(pipeline.pipeline_id), pipeline.name, pipeline.monitoring])
    sheet = book.create_sheet("Won by employee")
    sheet.append(["employee_id", "employee", "period", "currency", "deals", "amount"])
    for won in report.won_by_employee:
        sheet.append(
            [
                str(won.employee_id) if won.employee_id else None,
                won.employee_name,
                won.period,
                won.currency,
                won.count,
                won.amount,
            ]
        )
    sheet = book.create_sheet("Forecast")
    sheet.append(["period", "currency", "deals", "amount"])
    for forecast in report.forecast:
        sheet.append([forecast.period, forecast.currency, forecast.deals, forecast.amount])
    sheet = book.create_sheet("Summary")
    sheet.append(
        [
            "date_from",
            "date_to",
            "time_zone",
            "won_deals",
            "average_cycle_days",
            "average_contacts_per_won_deal",
        ]
    )
    sheet.append(
        [
            report.date_from,
            report.date_to,
            report.time_zone,
            report.won_deals,
            report.average_cycle_days,
            report.average_contacts_per_won_deal,
        ]
    )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
