"""An employee's preferences: channels per kind, quiet hours, digests (no I/O)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clientele_shared.events.schemas.notifications import Channel
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from clientele_notifier.deliveries.rules import DeliveryState

# --- preferences and quiet hours ---------------------------------------------------------------


def _valid_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # a folder of zones: OSError
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


ClockTime = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
ZoneName = Annotated[str, StringConstraints(max_length=64), AfterValidator(_valid_zone)]
KindKey = Annotated[str, StringConstraints(pattern=r"^(\*|[a-z0-9][a-z0-9_.-]{0,99})$")]
Digest = Literal["off", "hourly", "daily"]


def _clock(value: str) -> dt.time:
    hours, minutes = value.split(":")
    return dt.time(int(hours), int(minutes))


def quiet_until(
    now: dt.datetime, start: str | None, end: str | None, zone: str
) -> dt.datetime | None:
    """The end of the quiet period ``now`` falls in (UTC), or None outside quiet hours.

    ``start``/``end`` are local wall-clock times; a window may span midnight (22:00–07:00).
    """
    if start is None or end is None or start == end:
        return None
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    begin, finish = _clock(start), _clock(end)
    today = local.date()
    t = local.time().replace(tzinfo=None)
    if begin < finish:
        inside = begin <= t < finish
        end_date = today
    else:  # spans midnight
        inside = t >= begin or t < finish
        end_date = today + dt.timedelta(days=1) if t >= begin else today
    if not inside:
        return None
    return dt.datetime.combine(end_date, finish, tzinfo=tz).astimezone(dt.UTC)


class Preferences(BaseModel):
    """An employee's choices: channels per notification kind ("*" = any other kind), quiet
    hours for e-mail in a time zone, and a digest of e-mails instead of single messages."""

    model_config = ConfigDict(extra="forbid")

    channels: dict[KindKey, list[Channel]] = Field(default_factory=dict, max_length=200)
    quiet_start: ClockTime | None = None
    quiet_end: ClockTime | None = None
    timezone: ZoneName = "UTC"
    digest: Digest = "off"

    @model_validator(mode="after")
    def _both_or_none(self) -> Preferences:
        if (self.quiet_start is None) != (self.quiet_end is None):
            raise ValueError("give both quiet_start and quiet_end, or neither")
        return self

    def allows(self, kind: str, channel: Channel) -> bool:
        chosen = self.channels.get(kind, self.channels.get("*"))
        return chosen is None or channel in chosen

    def plan(
        self, kind: str, channel: Channel, now: dt.datetime
    ) -> tuple[DeliveryState, dt.datetime]:
        """The initial state and first attempt time of a delivery to this employee."""
        if not self.allows(kind, channel):
            return DeliveryState.SUPPRESSED, now
        if channel is Channel.EMAIL and self.digest != "off":
            return DeliveryState.DIGEST, now
        if channel is Channel.EMAIL:
            until = quiet_until(now, self.quiet_start, self.quiet_end, self.timezone)
            if until is not None:
                return DeliveryState.PENDING, until
        return DeliveryState.PENDING, now


DIGEST_PERIOD = {"hourly": dt.timedelta(hours=1), "daily": dt.timedelta(days=1)}


def digest_due(digest: str, oldest_held: dt.datetime, now: dt.datetime) -> bool:
    period = DIGEST_PERIOD.get(digest)
    return period is not None and now - oldest_held >= period
