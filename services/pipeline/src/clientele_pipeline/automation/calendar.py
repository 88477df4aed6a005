"""The business calendar (no I/O): working week, hours and time zone of a direction (or the
company's), public holidays with their transferred working days from the ``holidays`` library
(Russia by default), the company's and the direction's own days on top; delays counted in
calendar time, working hours or working days, and "at the next working-hours time" (ADR 34)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import holidays
from clientele_shared.values import ClockTime, Note
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

COMPANY = "*"
"""The calendar of the company: a direction without its own calendar uses it."""

HORIZON_DAYS = 3 * 366
"""How far ahead a working time is looked for (a calendar with no working day is refused)."""

Unit = Literal["minutes", "hours", "days", "working_hours", "working_days"]


class CalendarSettings(BaseModel):
    """A working week (ISO weekdays, 1 = Monday), working hours in a time zone, and whose
    public holidays apply (``holidays`` country code; none when null)."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = "Europe/Moscow"
    workdays: list[int] = Field(default=[1, 2, 3, 4, 5], min_length=1, max_length=7)
    work_start: ClockTime = time(9, 0)
    work_end: ClockTime = time(18, 0)
    holidays_country: str | None = Field(default="RU", pattern=r"^[A-Z]{2}$")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if value not in _zones():
            raise ValueError("not an IANA time zone")
        return value

    @field_validator("workdays")
    @classmethod
    def _days(cls, value: list[int]) -> list[int]:
        if any(day < 1 or day > 7 for day in value) or len(set(value)) != len(value):
            raise ValueError("distinct ISO weekdays, 1 (Monday) to 7 (Sunday)")
        return sorted(value)

    @field_validator("holidays_country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is not None and value not in holidays.list_supported_countries():
            raise ValueError("no public holidays are known for this country")
        return value

    @model_validator(mode="after")
    def _hours(self) -> CalendarSettings:
        if self.work_start.tzinfo or self.work_end.tzinfo:
            raise ValueError("working hours are local times without an offset")
        if self.work_end <= self.work_start:
            raise ValueError("work_end must be after work_start")
        return self


class CalendarDay(BaseModel):
    """A company or direction override: a day off that is not a public holiday, or a working
    day that would be one (a transferred Saturday, a holiday worked)."""

    model_config = ConfigDict(extra="forbid")

    working: bool
    note: Note | None = None


class Calendar(BaseModel):
    """A calendar as stored: whose (`*`: the company), its settings (a direction without
    them works the company's week and hours), its own days."""

    scope: str
    settings: CalendarSettings | None = None
    days: dict[date, CalendarDay] = Field(default_factory=dict)
    version: int = 0


class Delay(BaseModel):
    """How long an action waits: in calendar units or in working hours or days."""

    model_config = ConfigDict(extra="forbid")

    amount: int = Field(ge=0, le=366 * 24 * 60)
    unit: Unit


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


@lru_cache(maxsize=32)
def _public(country: str) -> Any:
    """The country's holidays (years filled in as they are asked for)."""
    return holidays.country_holidays(country)


@dataclass(frozen=True)
class BusinessCalendar:
    """Working-time arithmetic for one direction: its own days win over the company's,
    which win over the public holidays and transferred working days, which win over the
    working week."""

    settings: CalendarSettings = field(default_factory=CalendarSettings)
    overrides: dict[date, bool] = field(default_factory=dict)

    @property
    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.settings.timezone)
        except ZoneInfoNotFoundError:  # validated on save; a zone dropped since: UTC
            return ZoneInfo("UTC")

    def is_working_day(self, day: date) -> bool:
        if day in self.overrides:
            return self.overrides[day]
        if self.settings.holidays_country is not None:
            public = _public(self.settings.holidays_country)
            if day in public:  # also fills the year's transferred working days
                return False
            if day in public.weekend_workdays:
                return True
        return day.isoweekday() in self.settings.workdays

    def _at(self, day: date, moment: time) -> datetime:
        return datetime.combine(day, moment, tzinfo=self.zone)

    def next_working_time(self, moment: datetime) -> datetime:
        """``moment`` if it falls in working hours, else the start of the next ones."""
        local = moment.astimezone(self.zone)
        day = local.date()
        for _ in range(HORIZON_DAYS):
            if self.is_working_day(day):
                if local < self._at(day, self.settings.work_start):
                    return self._at(day, self.settings.work_start)
                if local < self._at(day, self.settings.work_end):
                    return local
            day += timedelta(days=1)
            local = self._at(day, time(0))
        raise ValueError("the calendar has no working time in the next three years")

    def add_working_time(self, moment: datetime, span: timedelta) -> datetime:
        """``span`` of working hours after ``moment`` (counted from the next working time)."""
        current = self.next_working_time(moment)
        left = span
        while True:
            end = self._at(current.date(), self.settings.work_end)
            if left <= end - current:
                return current + left
            left -= end - current
            current = self.next_working_time(end)

    def add_working_days(self, moment: datetime, days: int) -> datetime:
        """The same working time of day ``days`` working days later (from the next working
        time: a Friday evening plus one working day is Tuesday morning)."""
        current = self.next_working_time(moment)
        day = current.date()
        for _ in range(days):
            day += timedelta(days=1)
            for _ in range(HORIZON_DAYS):
                if self.is_working_day(day):
                    break
                day += timedelta(days=1)
        return self._at(day, current.time())

    def due(self, moment: datetime, delay: Delay | None, *, at_working_time: bool) -> datetime:
        """When an action delayed by ``delay`` from ``moment`` is due."""
        result = moment
        if delay is not None:
            if delay.unit == "working_hours":
                result = self.add_working_time(moment, timedelta(hours=delay.amount))
            elif delay.unit == "working_days":
                result = self.add_working_days(moment, delay.amount)
            else:
                result = moment + timedelta(**{delay.unit: delay.amount})
        if at_working_time:
            result = self.next_working_time(result)
        return result


def effective(company: Calendar | None, own: Calendar | None) -> BusinessCalendar:
    """A direction's calendar: its settings if it has them, else the company's; the
    company's days with the direction's over them."""
    settings = (own and own.settings) or (company and company.settings) or CalendarSettings()
    overrides = {day: value.working for day, value in (company.days if company else {}).items()}
    overrides |= {day: value.working for day, value in (own.days if own else {}).items()}
    return BusinessCalendar(settings=settings, overrides=overrides)
