"""Greeting dates without I/O: 29 February, holidays by rule, a recipient's local date and send
time, the (month, day) pairs celebrated somewhere at a moment, bad calendar input."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from clientele_campaigns.greetings.rules import (
    FixedDate,
    Holiday,
    HolidayDraft,
    NthWeekday,
    birthday_days,
    due_now,
    on_day,
    zone_named,
)
from pydantic import ValidationError


def test_29_february_is_28_february_in_a_year_without_it() -> None:
    assert on_day(2, 29, 2027) == date(2027, 2, 28)
    assert on_day(2, 29, 2028) == date(2028, 2, 29)
    assert on_day(2, 28, 2028) == date(2028, 2, 28)


def test_holidays_by_rule() -> None:
    metallurgist = NthWeekday(kind="weekday", month=7, weekday="sunday", nth=3)
    assert [metallurgist.on(y) for y in (2026, 2027)] == [date(2026, 7, 19), date(2027, 7, 18)]
    machine_builder = NthWeekday(kind="weekday", month=9, weekday="sunday", nth=-1)
    assert machine_builder.on(2026) == date(2026, 9, 27)
    accountant = FixedDate(kind="fixed", month=11, day=21)
    assert accountant.on(2026) == date(2026, 11, 21)
    assert FixedDate(kind="fixed", month=2, day=29).on(2027) == date(2027, 2, 28)


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "fixed", "month": 2, "day": 30},
        {"kind": "fixed", "month": 4, "day": 31},
        {"kind": "fixed", "month": 13, "day": 1},
        {"kind": "weekday", "month": 7, "weekday": "sunday", "nth": 5},
        {"kind": "weekday", "month": 7, "weekday": "воскресенье", "nth": 1},
        {"kind": "easter"},
    ],
)
def test_impossible_holiday_rules_are_refused(rule: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        HolidayDraft.model_validate({"name": "День", "rule": rule})


def test_a_recipient_is_due_on_their_local_date_once_their_send_time_has_come() -> None:
    now = datetime(2026, 3, 10, 0, 30, tzinfo=UTC)  # 10:30 in Vladivostok, 02:30 in Kaliningrad
    birthday = date(1980, 3, 10)

    def on(year: int) -> date:
        return on_day(birthday.month, birthday.day, year)

    vladivostok, kaliningrad = ZoneInfo("Asia/Vladivostok"), ZoneInfo("Europe/Kaliningrad")
    assert due_now(now, vladivostok, time(10), on) == date(2026, 3, 10)
    assert due_now(now, kaliningrad, time(10), on) is None
    assert due_now(now, vladivostok, time(11), on) is None
    eve = datetime(2026, 3, 9, 20, 0, tzinfo=UTC)  # 23:00 of the 9th in Kaliningrad
    assert due_now(eve, kaliningrad, time(10), on) is None
    assert due_now(eve, vladivostok, time(10), on) is None  # 06:00 of the 10th: too early


def test_a_missed_occasion_is_due_up_to_late_days_after_if_the_greeting_existed() -> None:
    moscow = ZoneInfo("Europe/Moscow")

    def new_year_eve(year: int) -> date:
        return on_day(12, 31, year)

    now = datetime(2028, 1, 1, 5, tzinfo=UTC)  # 08:00 of 1 January in Moscow
    assert due_now(now, moscow, time(10), new_year_eve) is None
    assert due_now(now, moscow, time(10), new_year_eve, late_days=1) == date(2027, 12, 31)
    made = datetime(2027, 12, 1, tzinfo=UTC)
    assert due_now(now, moscow, time(10), new_year_eve, late_days=1, since=made) == date(
        2027, 12, 31
    )
    made_after = datetime(2027, 12, 31, 12, tzinfo=UTC)  # after 10:00 of the 31st in Moscow
    assert due_now(now, moscow, time(10), new_year_eve, late_days=1, since=made_after) is None
    two_days = datetime(2028, 1, 2, 5, tzinfo=UTC)
    assert due_now(two_days, moscow, time(10), new_year_eve, late_days=1) is None
    assert due_now(two_days, moscow, time(10), new_year_eve, late_days=2) == date(2027, 12, 31)


def test_the_birthdays_celebrated_somewhere_now() -> None:
    days = birthday_days(datetime(2027, 2, 28, 12, tzinfo=UTC))
    assert (2, 28) in days
    assert (2, 29) in days
    assert (3, 1) in days
    assert (2, 27) in days
    assert (2, 29) not in birthday_days(datetime(2028, 2, 27, 12, tzinfo=UTC))  # a leap year
    assert (2, 29) in birthday_days(datetime(2028, 2, 29, 12, tzinfo=UTC))
    late = birthday_days(datetime(2027, 3, 2, 12, tzinfo=UTC), late_days=2)
    assert (2, 27) in late  # two days before some zone's 1 March
    assert (2, 29) in late
    assert (2, 26) not in late


def test_a_holiday_of_industries_and_one_of_any() -> None:
    base = {"id": uuid.uuid4(), "version": 1, "created_by": "x"}
    times = {"created_at": datetime.now(UTC), "updated_at": datetime.now(UTC)}
    rule = {"kind": "fixed", "month": 12, "day": 22}
    energy = Holiday.model_validate(
        {**base, **times, "name": "Э", "rule": rule, "industries": ["Энергетика"]}
    )
    assert energy.of_industry(" энергетика ")
    assert not energy.of_industry("Торговля")
    assert not energy.of_industry(None)
    anyone = Holiday.model_validate({**base, **times, "name": "Б", "rule": rule})
    assert anyone.of_industry(None)


def test_a_time_zone_from_custom_attributes() -> None:
    assert zone_named({"time_zone": "Asia/Vladivostok"}) == ZoneInfo("Asia/Vladivostok")
    assert zone_named({"часовой пояс": " Europe/Kaliningrad "}) == ZoneInfo("Europe/Kaliningrad")
    assert zone_named({"time_zone": "Mars/Olympus"}) is None
    assert zone_named({"time_zone": "../../etc/passwd"}) is None
    assert zone_named(None) is None
