"""Greetings (ADR 51): the professional holidays calendar and standing greetings (create,
change, read), and the sweep that sends each due recipient's greeting once a year through the
mailings' send path."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clientele_shared.auth.access import ensure_visible, writable_directions
from clientele_shared.auth.principal import Principal
from clientele_shared.http.problems import NotFound, invalid, invalid_field
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import (
    UnitOfWork,
    Versioned,
    field_changes,
    soft_delete,
    unit_of_work,
    write_version,
)
from clientele_shared.templating import TemplateInvalid
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_campaigns.campaigns import service as campaigns
from clientele_campaigns.contacts import queries as contacts_queries
from clientele_campaigns.contacts.rules import Contact, Premises
from clientele_campaigns.greetings import queries
from clientele_campaigns.greetings.rules import (
    BirthdayOccasion,
    Due,
    Greeting,
    GreetingDraft,
    GreetingPatch,
    Holiday,
    HolidayDraft,
    HolidayOccasion,
    HolidayPatch,
    birthday_days,
    due_now,
    local_dates,
    occasion_key,
    on_day,
    zone_named,
)
from clientele_campaigns.lists import service as lists
from clientele_campaigns.mailings import service as mailings
from clientele_campaigns.mailings.rules import Candidate, holds_position
from clientele_campaigns.settings import CampaignsSettings
from clientele_campaigns.tables import audit_log, greetings, professional_holidays
from clientele_campaigns.templates import service as templates
from clientele_campaigns.templates.rules import TemplateParts, compile_parts, problems_of

HOLIDAY = Versioned(professional_holidays, "professional_holiday")
GREETING = Versioned(greetings, "greeting")
_NO_HOLIDAY = "The professional holiday does not exist."
_NO_GREETING = "The greeting does not exist."
Draft = TypeVar("Draft", HolidayDraft, GreetingDraft)


def _patched(model: type[Draft], values: dict[str, Any]) -> Draft:
    """A record with a patch applied, as a draft (a field patched to null: 422, not a 500)."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise invalid([dict(error) for error in exc.errors(include_url=False)]) from None


# --- the professional holidays calendar (company-wide; writes need a role: the router) -------


def _holiday_values(draft: HolidayDraft | Holiday) -> dict[str, Any]:
    return {
        "name": draft.name,
        "rule": draft.rule.model_dump(mode="json"),
        "industries": list(draft.industries),
        "positions": list(draft.positions),
    }


async def create_holiday(
    *, runtime: ServiceRuntime, principal: Principal, draft: HolidayDraft
) -> Holiday:
    holiday_id = uuid.uuid4()
    values = _holiday_values(draft)
    async with campaigns.work(runtime, principal) as uow:
        await queries.insert_holiday(
            uow.session,
            {
                **values,
                "id": holiday_id,
                "version": 1,
                "created_by": principal.subject,
                "updated_by": principal.subject,
            },
        )
        await uow.audit(
            kind=HOLIDAY.kind,
            entity_id=holiday_id,
            action="created",
            version=1,
            changes={k: {"old": None, "new": v} for k, v in values.items()},
        )
    return await get_holiday(runtime=runtime, holiday_id=holiday_id)


async def get_holiday(*, runtime: ServiceRuntime, holiday_id: uuid.UUID) -> Holiday:
    async with runtime.sessions() as session:
        found = await queries.holiday(session, holiday_id)
    if found is None or found.deleted_at is not None:
        raise NotFound(_NO_HOLIDAY)
    return found


async def list_holidays(*, runtime: ServiceRuntime) -> list[Holiday]:
    async with runtime.sessions() as session:
        return await queries.holidays(session)


async def _locked_holiday(uow: UnitOfWork, holiday_id: uuid.UUID) -> Holiday:
    row = await HOLIDAY.lock(uow.session, holiday_id)
    if row is None or row["deleted_at"] is not None:
        raise NotFound(_NO_HOLIDAY)
    return Holiday.model_validate(row)


async def change_holiday(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    holiday_id: uuid.UUID,
    patch: HolidayPatch,
    expected: set[int],
) -> Holiday:
    async with campaigns.work(runtime, principal) as uow:
        current = await _locked_holiday(uow, holiday_id)
        changed = _patched(
            HolidayDraft,
            {**_holiday_values(current), **patch.model_dump(exclude_unset=True, mode="json")},
        )
        old, new = _holiday_values(current), _holiday_values(changed)
        await write_version(
            uow,
            HOLIDAY,
            holiday_id,
            current=current.version,
            expected=expected,
            values=new,
            action="changed",
            changes=field_changes(old, new),
        )
    return await get_holiday(runtime=runtime, holiday_id=holiday_id)


async def delete_holiday(
    *, runtime: ServiceRuntime, principal: Principal, holiday_id: uuid.UUID, expected: set[int]
) -> None:
    """Soft-deleted: greetings naming it send nothing more."""
    async with campaigns.work(runtime, principal) as uow:
        current = await _locked_holiday(uow, holiday_id)
        await soft_delete(uow, HOLIDAY, current, expected)


# --- greetings -----------------------------------------------------------------------------------


def _compiled(parts: TemplateParts, channel: str) -> None:
    try:
        template = compile_parts(parts)
    except TemplateInvalid as problems:
        raise invalid(problems_of(problems)) from None
    if channel == "email" and not template.refers_to("unsubscribe_url"):
        raise invalid_field(
            "template", "an e-mail greeting needs {{ unsubscribe_url }}", "unsubscribe_link"
        )


async def _check_references(
    session: AsyncSession, principal: Principal, draft: GreetingDraft
) -> None:
    """The holiday and the list it names exist, the caller sees the list (422), and it is a
    static one."""
    if isinstance(draft.occasion, HolidayOccasion):
        found = await queries.holiday(session, draft.occasion.holiday_id)
        if found is None or found.deleted_at is not None:
            raise invalid_field("occasion.holiday_id", "no such holiday", "unknown_reference")
    list_id = draft.audience.list_id
    if list_id is not None:
        kind = await lists.referenced_kind(session, principal, list_id, "audience.list_id")
        if kind == "dynamic":
            raise invalid_field(
                "audience.list_id",
                "a greeting cannot resolve a dynamic list each day (nobody sends it then): "
                "use a static list",
                "dynamic_greeting",
            )


def _greeting_values(draft: GreetingDraft) -> dict[str, Any]:
    assert draft.template is not None
    return {
        "title": draft.title,
        "subject": draft.template.subject,
        "html": draft.template.html,
        "text": draft.template.text,
        "reply_to": draft.reply_to,
        "audience": draft.audience.model_dump(mode="json"),
        "send_at": draft.send_at,
        "time_zone": draft.time_zone,
        "active": draft.active,
    }


def _draft_of(greeting: Greeting) -> dict[str, Any]:
    return {
        "title": greeting.title,
        "directions": greeting.directions,
        "channel": greeting.channel,
        "occasion": greeting.occasion.model_dump(mode="json"),
        "template": greeting.parts.model_dump(),
        "reply_to": greeting.reply_to,
        "audience": greeting.audience.model_dump(mode="json"),
        "send_at": greeting.send_at,
        "time_zone": greeting.time_zone,
        "active": greeting.active,
    }


def _audited(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in values.items()}


async def create_greeting(
    *, runtime: ServiceRuntime, principal: Principal, draft: GreetingDraft
) -> Greeting:
    """A standing greeting; made from a stored template, it copies its newest version."""
    writable_directions(principal, draft.directions)
    greeting_id = uuid.uuid4()
    async with campaigns.work(runtime, principal) as uow:
        made_from: dict[str, Any] = {}
        if draft.template_id is not None:
            stored = await templates.for_mailing(uow.session, principal, draft.template_id)
            made_from = {"template_id": stored.id, "template_version": stored.version}
            draft = draft.model_copy(update={"template": stored.parts, "template_id": None})
            if draft.channel == "fax" and not stored.parts.text:
                raise invalid_field("template_id", "a fax prints the template's text part")
        assert draft.template is not None
        _compiled(draft.template, draft.channel)
        await _check_references(uow.session, principal, draft)
        values = _greeting_values(draft)
        await queries.insert_greeting(
            uow.session,
            {
                **values,
                **made_from,
                "id": greeting_id,
                "directions": draft.directions,
                "channel": draft.channel,
                "occasion": draft.occasion.model_dump(mode="json"),
                "version": 1,
                "created_by": principal.subject,
                "updated_by": principal.subject,
            },
        )
        await uow.audit(
            kind=GREETING.kind,
            entity_id=greeting_id,
            action="created",
            version=1,
            changes={k: {"old": None, "new": v} for k, v in _audited(values).items()},
        )
    return await get_greeting(runtime=runtime, principal=principal, greeting_id=greeting_id)


async def _visible(
    session: AsyncSession, principal: Principal, greeting_id: uuid.UUID, *, lock: bool = False
) -> Greeting:
    found = await queries.greeting(session, greeting_id, lock=lock)
    if found is None:
        raise NotFound(_NO_GREETING)
    ensure_visible(principal, found.directions, _NO_GREETING)
    return found


async def get_greeting(
    *, runtime: ServiceRuntime, principal: Principal, greeting_id: uuid.UUID
) -> Greeting:
    async with runtime.sessions() as session:
        return await _visible(session, principal, greeting_id)


async def list_greetings(
    *, runtime: ServiceRuntime, principal: Principal, limit: int
) -> list[Greeting]:
    async with runtime.sessions() as session:
        return await queries.list_visible(session, principal, limit)


async def change_greeting(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    greeting_id: uuid.UUID,
    patch: GreetingPatch,
    expected: set[int],
) -> Greeting:
    """A new version (If-Match); ``active`` false pauses it. Those greeted this year stay so."""
    async with campaigns.work(runtime, principal) as uow:
        current = await _visible(uow.session, principal, greeting_id, lock=True)
        writable_directions(principal, current.directions)
        draft = _patched(
            GreetingDraft, {**_draft_of(current), **patch.model_dump(exclude_unset=True)}
        )
        assert draft.template is not None
        _compiled(draft.template, draft.channel)
        await _check_references(uow.session, principal, draft)
        old = _greeting_values(GreetingDraft.model_validate(_draft_of(current)))
        new = _greeting_values(draft)
        stored = {}
        if (
            new["subject"] != old["subject"]
            or new["html"] != old["html"]
            or new["text"] != old["text"]
        ):
            stored = {"template_id": None, "template_version": None}  # no stored version's now
        await write_version(
            uow,
            GREETING,
            greeting_id,
            current=current.version,
            expected=expected,
            values={**new, **stored},
            action="changed",
            changes=field_changes(_audited(old), _audited(new)),
        )
    return await get_greeting(runtime=runtime, principal=principal, greeting_id=greeting_id)


async def greeted(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    greeting_id: uuid.UUID,
    year: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Who was greeted (per occasion and year) and by which day's mailing; the excluded only
    when the caller may see them."""
    async with runtime.sessions() as session:
        await _visible(session, principal, greeting_id)
        return await queries.sends(session, greeting_id, year, limit, principal)


# --- the sweep ------------------------------------------------------------------------------------

WORKER = mailings.WORKER


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ValueError, OSError, ZoneInfoNotFoundError):  # a folder of zones: OSError
        return None


async def sweep(
    runtime: ServiceRuntime, settings: CampaignsSettings, at: datetime | None = None
) -> int:
    """Look at each greeting due for a look (one transaction each, the greeting locked: a
    replica sweeping it is skipped) and start the day's mailing of its recipients due now;
    ``at``: the moment to sweep as (the database's now otherwise). How many were looked at."""
    swept = 0
    while True:
        async with unit_of_work(runtime.sessions, runtime.outbox, audit_log, WORKER) as uow:
            now = at or await uow.session.scalar(select(func.now()))
            assert now is not None
            greeting = await queries.due(uow.session, now)
            if greeting is None:
                return swept
            await _greet(uow, settings, greeting, now)
            interval = timedelta(seconds=settings.greeting_sweep_interval)
            await queries.set_next_run(uow.session, greeting.id, now + interval)
        swept += 1


async def _greet(
    uow: UnitOfWork, settings: CampaignsSettings, greeting: Greeting, now: datetime
) -> None:
    """The recipients whose occasion is today in their time zone and whose send time has come
    (or was up to ``GREETING_CATCH_UP_DAYS`` before, missed), not greeted for it this year:
    recorded and sent one mailing (the send path's consent, block and unsubscribe filtering
    applies; each outcome kept). Those it excludes are kept as excluded, not greeted, and taken
    again once they would get it, while the window lasts."""
    session = uow.session
    occasion = greeting.occasion
    late = settings.greeting_catch_up_days
    holiday: Holiday | None = None
    if isinstance(occasion, HolidayOccasion):
        holiday = await queries.holiday(session, occasion.holiday_id)
        if holiday is None or holiday.deleted_at is not None:
            return
        if not any(holiday.on(d.year) == d for d in local_dates(now, late)):
            return
    organizations = await queries.audience_organizations(
        session, greeting.directions, greeting.audience
    )
    if holiday is not None:
        organizations = {k: v for k, v in organizations.items() if holiday.of_industry(v.industry)}
    if isinstance(occasion, BirthdayOccasion):
        contacts = await queries.born_on(session, birthday_days(now, late), organizations)
    else:
        contacts = await contacts_queries.employed_at(session, organizations)
    default = _zone(greeting.time_zone) or ZoneInfo(settings.greeting_time_zone)
    found = [
        d
        for contact in contacts
        if (d := _due(contact, organizations, greeting, holiday, default, now, late)) is not None
    ]
    if not found:
        return
    key = occasion_key(occasion)
    mailing_id = uuid.uuid4()
    values = {
        "id": mailing_id,
        "title": greeting.title,
        "channel": greeting.channel,
        "directions": greeting.directions,
        "subject": greeting.subject,
        "html": greeting.html,
        "text": greeting.text,
        "reply_to": greeting.reply_to,
        "audience": {"kind": "greeting", "greeting_id": str(greeting.id), "occasion": key},
        "template_id": greeting.template_id,
        "template_version": greeting.template_version,
    }
    kept = await queries.outcomes(
        session, greeting.id, key, [(d.person_id, d.on.year) for d in found]
    )
    excluded = [
        Candidate(d.person_id, d.organization_id)
        for d in found
        if kept.get(d.person_id) == "excluded"
    ]
    now_sendable = await mailings.sendable(session, values, excluded) if excluded else set()
    trying = [d for d in found if d.person_id not in kept or d.person_id in now_sendable]
    claimed = await queries.claim_sends(
        session, greeting.id, key, mailing_id, [(d.person_id, d.on) for d in trying]
    )
    if not claimed:
        return
    await mailings.start_now(
        uow,
        values,
        [Candidate(d.person_id, d.organization_id) for d in trying if d.person_id in claimed],
        note=f"the greeting {greeting.id} ({key})",
    )
    await queries.keep_exclusions(session, mailing_id)


def _due(
    contact: Contact,
    organizations: dict[uuid.UUID, Premises],
    greeting: Greeting,
    holiday: Holiday | None,
    default: ZoneInfo,
    now: datetime,
    late_days: int,
) -> Due | None:
    """Whether a person's greeting is due now (or was up to ``late_days`` before): at their
    first audience organization (in id order) where they hold a wanted position, in their time
    zone, else that organization's, else ``default``."""
    wanted = greeting.audience.positions
    at = next(
        (
            e
            for e in sorted(contact.employments, key=lambda e: e.organization_id)
            if e.organization_id in organizations
            and holds_position(e.position, wanted)
            and (holiday is None or holds_position(e.position, holiday.positions))
        ),
        None,
    )
    if at is None:
        return None
    zone = (
        zone_named(contact.attributes)
        or _zone(organizations[at.organization_id].time_zone)
        or default
    )
    birthday = contact.birthday
    if holiday is None and birthday is None:
        return None

    def occasion_on(year: int) -> date | None:
        if holiday is not None:
            return holiday.on(year)
        assert birthday is not None
        return on_day(birthday.month, birthday.day, year)

    on = due_now(
        now, zone, greeting.send_at, occasion_on, late_days=late_days, since=greeting.created_at
    )
    return None if on is None else Due(contact.person_id, at.organization_id, on)
