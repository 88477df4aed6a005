"""The effectiveness figures as an .xlsx workbook (no I/O; blocking: run it off the event loop).

Numbers are numbers (counts as integers, money as decimals with two places, the conversion as
a percentage), times are UTC, text is always text (a title starting with ``=`` is never a
formula)."""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from clientele_campaigns.effectiveness.rules import STATUSES, EventFigures, Figures, KindFigures

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MONEY = "#,##0.00"
SHARE = "0.00%"
WHEN = "yyyy-mm-dd hh:mm"
TOTAL = "Итого"
KIND = "Вид"
STATUS_NAMES = {
    "invited": "Приглашены",
    "confirmed": "Подтвердили",
    "registered": "Зарегистрированы",
    "attended": "Посетили",
    "no_show": "Не пришли",
    "cancelled": "Отменили",
}


class _Sheet:
    """One write-only sheet: a bold header, then rows of typed cells."""

    def __init__(self, book: Workbook, title: str, header: list[str]) -> None:
        self.sheet: WriteOnlyWorksheet = book.create_sheet(title=title)
        self.sheet.append([self._cell(name, bold=True) for name in header])

    def _cell(self, value: Any, *, fmt: str | None = None, bold: bool = False) -> WriteOnlyCell:
        if isinstance(value, datetime):
            value = value.astimezone(UTC).replace(tzinfo=None)
            fmt = fmt or WHEN
        cell = WriteOnlyCell(self.sheet, value=value)
        if isinstance(value, str):
            cell.value = ILLEGAL_CHARACTERS_RE.sub("", value)
            cell.data_type = "s"  # text stays text, "=..." included
        if fmt:
            cell.number_format = fmt
        if bold:
            cell.font = Font(bold=True)
        return cell

    def row(self, *values: Any, formats: dict[int, str] | None = None, bold: bool = False) -> None:
        formats = formats or {}
        self.sheet.append(
            [self._cell(v, fmt=formats.get(i), bold=bold) for i, v in enumerate(values)]
        )


def _named(
    events: Iterable[EventFigures], total: Figures | None, kinds: Iterable[KindFigures]
) -> list[tuple[str, Figures, bool]]:
    """Each event's title and figures, each kind's, then the total's (the last flag: a total
    row)."""
    rows: list[tuple[str, Figures, bool]] = [(event.title, event, False) for event in events]
    rows += [(f"{KIND}: {kind.kind_name_ru}", kind, False) for kind in kinds]
    if total is not None:
        rows.append((TOTAL, total, True))
    return rows


def workbook(events: list[EventFigures], total: Figures | None, kinds: list[KindFigures]) -> bytes:
    """The figures of the events (and for a period their total and those of each kind of
    event) on five sheets, six with the kinds."""
    book = Workbook(write_only=True)
    summary = _Sheet(
        book,
        "Сводка",
        [
            "Мероприятие",
            "Статус",
            "Начало (UTC)",
            "Участники",
            *(STATUS_NAMES[status] for status in STATUSES),
            "Сделки",
            "Выиграно",
            "Организаций-участников",
            "Из них со сделкой",
            "Конверсия",
            KIND,
        ],
    )
    for event in events:
        summary.row(
            event.title,
            event.status,
            event.planned_start,
            event.participants,
            *(event.by_status[status] for status in STATUSES),
            event.deals.deals,
            event.deals.won,
            event.deals.participating_organizations,
            event.deals.converted_organizations,
            event.deals.conversion,
            event.kind_name_ru,
            formats={14: SHARE},
        )
    if total is not None:
        summary.row(
            TOTAL,
            None,
            None,
            total.participants,
            *(total.by_status[status] for status in STATUSES),
            total.deals.deals,
            total.deals.won,
            total.deals.participating_organizations,
            total.deals.converted_organizations,
            total.deals.conversion,
            formats={14: SHARE},
            bold=True,
        )
    money = {2: MONEY, 3: MONEY, 4: MONEY, 5: MONEY}
    costs = _Sheet(
        book,
        "Затраты",
        ["Мероприятие", "Валюта", "План", "Факт", "На участника", "На посетителя"],
    )
    deals = _Sheet(
        book,
        "Сделки",
        ["Мероприятие", "Валюта", "Сделок", "Сумма", "Выиграно сделок", "Сумма выигранных"],
    )
    consumables = _Sheet(
        book, "Расходные материалы", ["Мероприятие", "Валюта / единица", "План", "Факт"]
    )
    for name, figures, bold in _named(events, total, kinds):
        for cost in figures.costs:
            costs.row(
                name,
                cost.currency,
                cost.planned,
                cost.actual,
                cost.per_participant,
                cost.per_attendee,
                formats=money,
                bold=bold,
            )
        for sums in figures.deals.by_currency:
            deals.row(
                name,
                sums.currency,
                sums.deals,
                sums.amount,
                sums.won_deals,
                sums.won_amount,
                formats={3: MONEY, 5: MONEY},
                bold=bold,
            )
        for spent in figures.consumables:
            consumables.row(
                name, spent.currency, spent.planned, spent.actual, formats=money, bold=bold
            )
        for used in figures.consumables_used:
            consumables.row(name, used.unit, None, used.quantity, bold=bold)
    if kinds:
        _kinds_sheet(book, kinds)
    stages = _Sheet(book, "Этапы", ["Мероприятие", "Этап", "Участники"])
    for event in events:
        for stage in event.by_stage:
            stages.row(event.title, stage.name, stage.participants)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _kinds_sheet(book: Workbook, kinds: list[KindFigures]) -> None:
    """The period's events grouped by kind: how many, participants, deals and conversion."""
    sheet = _Sheet(
        book,
        "По видам",
        [
            KIND,
            "Код",
            "Мероприятий",
            "Участники",
            "Посетили",
            "Сделки",
            "Выиграно",
            "Организаций-участников",
            "Из них со сделкой",
            "Конверсия",
        ],
    )
    for kind in kinds:
        sheet.row(
            kind.kind_name_ru,
            kind.kind,
            kind.events,
            kind.participants,
            kind.attendees,
            kind.deals.deals,
            kind.deals.won,
            kind.deals.participating_organizations,
            kind.deals.converted_organizations,
            kind.deals.conversion,
            formats={9: SHARE},
        )
