"""Greetings (ADR 51): the professional holidays calendar, a greeting's occasion and audience,
and when each recipient's greeting falls due in their own time zone (no I/O)."""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clientele_shared.events.schemas.notifications import EmailAddress
from clientele_shared.values import ClockTime, Directions, Label, Labels, Title
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from clientele_campaigns.contacts.rules import TIME_ZONE_ATTRIBUTES
from clientele_campaigns.mailings.rules import Position
from clientele_campaigns.templates.rules import TemplateParts

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[Weekday, ...] = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
LATEST_OFFSET = timedelta(hours=14)
"""The furthest any time zone is from UTC: a local date is within a day of the UTC date."""


def known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ValueError, OSError, ZoneInfoNotFoundError):  # a folder of zones: OSError
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


def on_day(month: int, day: int, year: int) -> date:
    """The date of a day of the year; 29 February is 28 February in a year without it."""
    if month == 2 and day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return date(year, month, day)


class FixedDate(BaseModel):
    """A holiday on the same day every year ("День бухгалтера": 21 November)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["fixed"]
    month: int = Field(ge=1, le=12)
    day: int = Field(ge=1, le=31)

    @model_validator(mode="after")
    def _exists(self) -> FixedDate:
        if self.day > calendar.monthrange(2000, self.month)[1]:  # 2000: a leap year
            raise ValueError(f"{self.month:02d} has no day {self.day}")
        return self

    def on(self, year: int) -> date | None:
        return on_day(self.month, self.day, year)


class NthWeekday(BaseModel):
    """A holiday on the nth weekday of a month ("День металлурга": the third Sunday of July);
    ``nth`` -1: the last one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["weekday"]
    month: int = Field(ge=1, le=12)
    weekday: Weekday
    nth: Literal[1, 2, 3, 4, -1]

    def on(self, year: int) -> date | None:
        wanted = WEEKDAYS.index(self.weekday)
        days = [
            d
            for d in range(1, calendar.monthrange(year, self.month)[1] + 1)
            if date(year, self.month, d).weekday() == wanted
        ]
        return date(year, self.month, days[self.nth - 1 if self.nth > 0 else -1])


HolidayRule = Annotated[FixedDate | NthWeekday, Field(discriminator="kind")]


class HolidayDraft(BaseModel):
    """A professional holiday of the company's calendar: its date rule, and who celebrates it:
    persons of organizations in ``industries`` and holding ``positions`` (either may be empty:
    any; "бухгалтер" matches "Главный бухгалтер", an industry matches case-insensitively)."""

    model_config = ConfigDict(extra="forbid")

    name: Title
    rule: HolidayRule
    industries: Labels = Field(default_factory=list)
    positions: list[Position] = Field(default_factory=list, max_length=50)


class HolidayPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Title | None = None
    rule: HolidayRule | None = None
    industries: Labels | None = None
    positions: list[Position] | None = Field(default=None, max_length=50)


class Holiday(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    name: str
    rule: HolidayRule
    industries: list[str] = []
    positions: list[str] = []
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    deleted_at: datetime | None = None

    @property
    def directions(self) -> list[str]:
        return []  # company-wide: writing it takes a role, not a direction

    def on(self, year: int) -> date | None:
        return self.rule.on(year)

    def of_industry(self, industry: str | None) -> bool:
        """Whether an organization of this industry celebrates it (no industries: any)."""
        if not self.industries:
            return True
        wanted = {i.casefold() for i in self.industries}
        return industry is not None and industry.strip().casefold() in wanted


class BirthdayOccasion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["birthday"]


class HolidayOccasion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["holiday"]
    holiday_id: uuid.UUID


Occasion = Annotated[BirthdayOccasion | HolidayOccasion, Field(discriminator="kind")]


def occasion_key(occasion: BirthdayOccasion | HolidayOccasion) -> str:
    """What the once-a-year key names: ``birthday`` or ``holiday:<id>``."""
    if isinstance(occasion, HolidayOccasion):
        return f"holiday:{occasion.holiday_id}"
    return "birthday"


class GreetingAudience(BaseModel):
    """Whom a greeting may reach: the persons of the greeting's directions' organizations,
    narrowed to a directory list's members, to ``industries`` and to ``positions`` (each
    optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    list_id: uuid.UUID | None = None
    industries: list[Label] = Field(default_factory=list, max_length=50)
    positions: list[Position] = Field(default_factory=list, max_length=50)


def _naive(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("give the time without an offset: the recipient's time zone applies")
    return value


class GreetingDraft(BaseModel):
    """A standing greeting: sent on each recipient's occasion at ``send_at`` of their local
    time (their time zone, else their organization's, else ``time_zone``)."""

    model_config = ConfigDict(extra="forbid")

    title: Title
    directions: Directions = Field(min_length=1)
    channel: Literal["email", "fax"] = "email"
    occasion: Occasion
    template: TemplateParts | None = Field(
        default=None, description="the message; or name a stored template with template_id"
    )
    template_id: uuid.UUID | None = None
    reply_to: EmailAddress | None = None
    audience: GreetingAudience = Field(default_factory=GreetingAudience)
    send_at: ClockTime = time(10, 0)
    time_zone: str | None = Field(
        default=None,
        max_length=64,
        description="recipients with no time zone of their own: the direction's (default: "
        "the company's)",
    )
    active: bool = True

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else known_zone(value)

    @field_validator("send_at")
    @classmethod
    def _local(cls, value: time) -> time:
        return _naive(value)

    @model_validator(mode="after")
    def _one_template(self) -> GreetingDraft:
        if (self.template is None) == (self.template_id is None):
            raise ValueError("give the template, or the template_id of a stored one")
        if self.template is not None and self.channel == "fax" and not self.template.text:
            raise ValueError("a fax prints the template's text part: give one")
        return self


class GreetingPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    template: TemplateParts | None = None
    reply_to: EmailAddress | None = None
    audience: GreetingAudience | None = None
    send_at: ClockTime | None = None
    time_zone: str | None = Field(default=None, max_length=64)
    active: bool | None = None

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else known_zone(value)

    @field_validator("send_at")
    @classmethod
    def _local(cls, value: time | None) -> time | None:
        return None if value is None else _naive(value)


class Greeting(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    title: str
    directions: list[str]
    channel: Literal["email", "fax"]
    occasion: Occasion
    subject: str
    html: str | None = None
    text: str | None = None
    template_id: uuid.UUID | None = None
    template_version: int | None = None
    reply_to: str | None = None
    audience: GreetingAudience
    send_at: ClockTime
    time_zone: str | None = None
    active: bool
    next_run_at: datetime | None = None
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime

    @property
    def parts(self) -> TemplateParts:
        return TemplateParts(subject=self.subject, html=self.html, text=self.text)


# --- when a greeting falls due ---------------------------------------------------------------


def zone_named(attributes: dict[str, Any] | None) -> ZoneInfo | None:
    """The IANA time zone a record's custom attributes name (None: none, or not a zone)."""
    for name in TIME_ZONE_ATTRIBUTES:
        value = (attributes or {}).get(name)
        if isinstance(value, str) and value.strip():
            try:
                return ZoneInfo(value.strip())
            except (ValueError, OSError, ZoneInfoNotFoundError):  # a folder of zones: OSError
                continue
    return None


def local_dates(now: datetime, late_days: int = 0) -> list[date]:
    """Every date some time zone has at ``now``, and the ``late_days`` before each."""
    today = {(now - LATEST_OFFSET).date(), now.date(), (now + LATEST_OFFSET).date()}
    return sorted({d - timedelta(days=back) for d in today for back in range(late_days + 1)})


def birthday_days(now: datetime, late_days: int = 0) -> list[tuple[int, int]]:
    """The (month, day) of birthdays celebrated somewhere at ``now`` or up to ``late_days``
    before (29 February with 28 February of a year without it)."""
    dates = local_dates(now, late_days)
    days = {(d.month, d.day) for d in dates}
    if any(d.month == 2 and d.day == 28 and not calendar.isleap(d.year) for d in dates):
        days.add((2, 29))
    return sorted(days)


@dataclass(frozen=True)
class Due:
    """A recipient whose greeting is due: at which organization, the local date and year."""

    person_id: uuid.UUID
    organization_id: uuid.UUID | None
    on: date


def due_now(
    now: datetime,
    zone: ZoneInfo,
    send_at: time,
    occasion_on: Callable[[int], date | None],
    *,
    late_days: int = 0,
    since: datetime | None = None,
) -> date | None:
    """The recipient's local date of their occasion if it is today there and ``send_at`` has
    come, or it was up to ``late_days`` before and its send time then was after ``since`` (the
    greeting existed: it was missed, not made afterwards); ``occasion_on(year)``: the occasion's
    date in a year, or None."""
    local = now.astimezone(zone)
    today = local.date()
    for back in range(late_days, -1, -1):  # the oldest missed day first
        day = today - timedelta(days=back)
        if occasion_on(day.year) != day:
            continue
        if back == 0:
            return day if local.time().replace(tzinfo=None) >= send_at else None
        if since is None or datetime.combine(day, send_at, zone) >= since:
            return day
    return None
