"""HTTP of greetings: the professional holidays calendar (read by everybody, written by admins
and marketers) and standing greetings, by direction (ADR 51)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Literal, TypeVar

from clientele_shared.auth.dependencies import CurrentPrincipal, require_roles
from clientele_shared.auth.principal import Principal, Role
from clientele_shared.http.concurrency import IfMatch, etag, required_versions
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel

from clientele_campaigns.greetings import service
from clientele_campaigns.greetings.rules import (
    Greeting,
    GreetingDraft,
    GreetingPatch,
    Holiday,
    HolidayDraft,
    HolidayPatch,
)

T = TypeVar("T", Holiday, Greeting)
router = APIRouter(tags=["greetings"])
CalendarWriter = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.MARKETER))]
HOLIDAYS = "/v1/professional-holidays"
GREETINGS = "/v1/greetings"


class Greeted(BaseModel):
    """A person greeted for an occasion in a year, on their local date, by a day's mailing; or
    excluded by it (``reason``: why), which is no greeting: tried again while the occasion's
    window lasts (ADR 51)."""

    person_id: uuid.UUID
    occasion: str
    year: int
    local_date: date
    mailing_id: uuid.UUID
    outcome: Literal["greeted", "excluded"]
    reason: str | None = None


def _tagged(response: Response, record: T) -> T:
    response.headers["ETag"] = etag(record.version)
    return record


@router.get(HOLIDAYS)
async def list_holidays(_principal: CurrentPrincipal, runtime: CurrentRuntime) -> list[Holiday]:
    """The company's calendar of professional holidays (seeded with Russian ones)."""
    return await service.list_holidays(runtime=runtime)


@router.post(HOLIDAYS, status_code=status.HTTP_201_CREATED)
async def create_holiday(
    draft: HolidayDraft, principal: CalendarWriter, runtime: CurrentRuntime, response: Response
) -> Holiday:
    """A professional holiday: a fixed date or the nth weekday of a month, for the persons of
    some industries and positions."""
    holiday = await service.create_holiday(runtime=runtime, principal=principal, draft=draft)
    response.headers["Location"] = f"{HOLIDAYS}/{holiday.id}"
    return _tagged(response, holiday)


@router.get(HOLIDAYS + "/{holiday_id}")
async def get_holiday(
    holiday_id: uuid.UUID, _principal: CurrentPrincipal, runtime: CurrentRuntime, response: Response
) -> Holiday:
    holiday = await service.get_holiday(runtime=runtime, holiday_id=holiday_id)
    return _tagged(response, holiday)


@router.patch(HOLIDAYS + "/{holiday_id}")
async def change_holiday(
    holiday_id: uuid.UUID,
    patch: HolidayPatch,
    principal: CalendarWriter,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Holiday:
    holiday = await service.change_holiday(
        runtime=runtime,
        principal=principal,
        holiday_id=holiday_id,
        patch=patch,
        expected=required_versions(if_match),
    )
    return _tagged(response, holiday)


@router.delete(HOLIDAYS + "/{holiday_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_holiday(
    holiday_id: uuid.UUID,
    principal: CalendarWriter,
    runtime: CurrentRuntime,
    if_match: IfMatch = None,
) -> None:
    """Greetings naming a deleted holiday send nothing more."""
    await service.delete_holiday(
        runtime=runtime,
        principal=principal,
        holiday_id=holiday_id,
        expected=required_versions(if_match),
    )


@router.post(GREETINGS, status_code=status.HTTP_201_CREATED)
async def create_greeting(
    draft: GreetingDraft, principal: CurrentPrincipal, runtime: CurrentRuntime, response: Response
) -> Greeting:
    """A standing greeting on each recipient's birthday or professional holiday, sent once a
    year at ``send_at`` of the recipient's time zone through the mailings' send path."""
    greeting = await service.create_greeting(runtime=runtime, principal=principal, draft=draft)
    response.headers["Location"] = f"{GREETINGS}/{greeting.id}"
    return _tagged(response, greeting)


@router.get(GREETINGS)
async def list_greetings(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[Greeting]:
    return await service.list_greetings(runtime=runtime, principal=principal, limit=limit)


@router.get(GREETINGS + "/{greeting_id}")
async def get_greeting(
    greeting_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime, response: Response
) -> Greeting:
    greeting = await service.get_greeting(
        runtime=runtime, principal=principal, greeting_id=greeting_id
    )
    return _tagged(response, greeting)


@router.patch(GREETINGS + "/{greeting_id}")
async def change_greeting(
    greeting_id: uuid.UUID,
    patch: GreetingPatch,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Greeting:
    """A new version (If-Match); ``active`` false pauses the greeting."""
    greeting = await service.change_greeting(
        runtime=runtime,
        principal=principal,
        greeting_id=greeting_id,
        patch=patch,
        expected=required_versions(if_match),
    )
    return _tagged(response, greeting)


@router.get(GREETINGS + "/{greeting_id}/greeted")
async def greeted(
    greeting_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    year: Annotated[int | None, Query(ge=1900, le=9999)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Greeted]:
    """Who was greeted or excluded, by year; each outcome is on the day's mailing's
    recipients."""
    rows = await service.greeted(
        runtime=runtime, principal=principal, greeting_id=greeting_id, year=year, limit=limit
    )
    return [Greeted.model_validate(row) for row in rows]
