"""Business-calendar arithmetic (ADR 34): Russian public holidays with their transferred
days from the ``holidays`` library, company and direction overrides, working hours and days."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from clientele_pipeline.automation.calendar import (
    COMPANY,
    BusinessCalendar,
    Calendar,
    CalendarDay,
    CalendarSettings,
    Delay,
    effective,
)
from pydantic import ValidationError

MSK = ZoneInfo("Europe/Moscow")
RU = BusinessCalendar()


def msk(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=MSK)  # type: ignore[misc]


def test_russian_holidays_and_transferred_days_come_from_the_library() -> None:
    assert not RU.is_working_day(date(2026, 1, 5))  # New Year holidays
    assert not RU.is_working_day(date(2026, 1, 9))  # day off moved from Saturday 3 January
    assert RU.is_working_day(date(2026, 1, 12))
    assert not RU.is_working_day(date(2026, 2, 23))  # Defender of the Fatherland Day
    assert RU.is_working_day(date(2025, 11, 1))  # a Saturday worked instead of 3 November
    assert not RU.is_working_day(date(2025, 11, 3))
    assert RU.is_working_day(date(2024, 12, 28))  # a Saturday worked instead of 31 December
    assert not RU.is_working_day(date(2025, 12, 31))
    assert not RU.is_working_day(date(2026, 12, 6))  # a plain Sunday


def test_working_hours_across_the_new_year_holidays() -> None:
    # Tuesday 30 December 2025, 17:00: one hour left that day, then 31 December (moved day
    # off), 1-8 January (holidays), 9 January (moved day off), the weekend: Monday 12 January.
    assert RU.add_working_time(msk(2025, 12, 30, 17), timedelta(hours=2)) == msk(2026, 1, 12, 10)
    assert RU.add_working_days(msk(2025, 12, 30, 11), 1) == msk(2026, 1, 12, 11)


def test_working_hours_over_23_february_and_a_weekend() -> None:
    # Friday 20 February 2026 17:30 + 1 working hour: half an hour on Friday, Saturday,
    # Sunday and Monday 23 February off, the rest on Tuesday.
    assert RU.add_working_time(msk(2026, 2, 20, 17, 30), timedelta(hours=1)) == msk(
        2026, 2, 24, 9, 30
    )
    assert RU.next_working_time(msk(2026, 2, 21, 12)) == msk(2026, 2, 24, 9)


def test_a_transferred_working_saturday_counts() -> None:
    # Friday 31 October 2025 17:00 + 2 working hours ends on Saturday 1 November (worked).
    assert RU.add_working_time(msk(2025, 10, 31, 17), timedelta(hours=2)) == msk(2025, 11, 1, 10)
    # From that Saturday's evening: 3 November (moved) and 4 November (Unity Day) are off.
    assert RU.add_working_time(msk(2025, 11, 1, 17), timedelta(hours=2)) == msk(2025, 11, 5, 10)
    assert RU.add_working_days(msk(2024, 12, 27, 10), 1) == msk(2024, 12, 28, 10)


def test_next_working_time_and_delays_in_calendar_time() -> None:
    # Sunday 6 December 2026 12:00 UTC is 15:00 in Moscow: Monday 09:00 Moscow.
    sunday = datetime(2026, 12, 6, 12, tzinfo=ZoneInfo("UTC"))
    assert RU.next_working_time(sunday) == msk(2026, 12, 7, 9)
    monday = msk(2026, 12, 7, 10, 15)
    assert RU.next_working_time(monday) == monday
    assert RU.next_working_time(msk(2026, 12, 7, 18)) == msk(2026, 12, 8, 9)
    assert RU.due(sunday, Delay(amount=90, unit="minutes"), at_working_time=False) == sunday + (
        timedelta(minutes=90)
    )
    assert RU.due(sunday, Delay(amount=1, unit="days"), at_working_time=True) == msk(
        2026, 12, 7, 15
    )
    assert RU.due(sunday, Delay(amount=3, unit="working_hours"), at_working_time=False) == msk(
        2026, 12, 7, 12
    )
    assert RU.due(sunday, None, at_working_time=True) == msk(2026, 12, 7, 9)


def test_company_and_direction_overrides_week_hours_and_zone() -> None:
    company = Calendar(
        scope=COMPANY,
        settings=CalendarSettings(work_start=time(10), work_end=time(19)),
        days={
            date(2026, 12, 7): CalendarDay(working=False, note="corporate day"),
            date(2026, 12, 8): CalendarDay(working=False),
        },
    )
    east = Calendar(
        scope="east",
        settings=CalendarSettings(timezone="Asia/Vladivostok", workdays=[1, 2, 3, 4, 5, 6]),
        days={
            date(2026, 12, 8): CalendarDay(working=True),
            date(2026, 2, 23): CalendarDay(working=True),
        },
    )
    both = effective(company, east)
    vladivostok = ZoneInfo("Asia/Vladivostok")
    assert not both.is_working_day(date(2026, 12, 7))  # the company's day off
    assert both.is_working_day(date(2026, 12, 8))  # the direction works it anyway
    assert both.is_working_day(date(2026, 12, 12))  # a six-day week
    assert both.is_working_day(date(2026, 2, 23))  # a holiday the direction works
    assert both.next_working_time(msk(2026, 12, 6, 20)) == datetime(
        2026, 12, 8, 9, tzinfo=vladivostok
    )
    only_company = effective(company, None)
    assert only_company.next_working_time(msk(2026, 12, 6, 20)) == msk(2026, 12, 9, 10)
    # a direction with only its own days keeps the company's week and hours
    days_only = effective(company, Calendar(scope="west", days=east.days))
    assert days_only.next_working_time(msk(2026, 12, 6, 20)) == msk(2026, 12, 8, 10)
    assert effective(None, None) == RU


def test_no_holidays_and_bad_settings() -> None:
    plain = BusinessCalendar(CalendarSettings(holidays_country=None))
    assert plain.is_working_day(date(2026, 2, 23))
    for bad in (
        {"timezone": "Mars/Olympus"},
        {"workdays": [0]},
        {"workdays": [1, 1]},
        {"workdays": []},
        {"work_start": "18:00", "work_end": "09:00"},
        {"holidays_country": "XX"},
        {"unknown": 1},
    ):
        with pytest.raises(ValidationError):
            CalendarSettings.model_validate(bad)
    never = BusinessCalendar(
        CalendarSettings(workdays=[7], holidays_country=None),
        overrides={date(2026, 12, 6) + timedelta(days=7 * n): False for n in range(200)},
    )
    with pytest.raises(ValueError, match="no working time"):
        never.next_working_time(msk(2026, 12, 6, 10))
