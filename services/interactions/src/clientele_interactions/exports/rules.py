"""The shared address book (vCard 3.0/4.0) and the meetings calendar (iCalendar): pure builders
of the files from what the read models hold; and what a secret calendar feed URL is shown as (no
I/O)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import vobject
from icalendar import Calendar, Event
from pydantic import BaseModel

VCardVersion = Literal["3.0", "4.0"]
DEFAULT_MEETING = timedelta(hours=1)
_PHONE_TYPES = {"work": "WORK", "mobile": "CELL", "fax": "FAX", "other": "VOICE"}


@dataclass(frozen=True)
class Contact:
    """One person in the address book, with the position at the first visible client."""

    person_id: uuid.UUID
    last_name: str | None
    first_name: str | None
    middle_name: str | None
    full_name: str
    emails: list[str]
    phones: list[dict[str, Any]]
    organization: str | None = None
    position: str | None = None
    updated_at: datetime | None = None


def _type(value: str, version: VCardVersion) -> str:
    return value.lower() if version == "4.0" else value


def vcard(contact: Contact, version: VCardVersion = "3.0") -> str:
    card = vobject.vCard()
    card.add("version").value = version
    card.add("uid").value = (
        f"urn:uuid:{contact.person_id}" if version == "4.0" else str(contact.person_id)
    )
    card.add("fn").value = contact.full_name
    card.add("n").value = vobject.vcard.Name(
        family=contact.last_name or "",
        given=contact.first_name or "",
        additional=contact.middle_name or "",
    )
    for index, address in enumerate(contact.emails):
        line = card.add("email")
        line.value = address
        line.type_param = _type("INTERNET" if version == "3.0" else "WORK", version)
        if index == 0:
            if version == "4.0":
                line.params["PREF"] = ["1"]
            else:
                line.type_paramlist = ["INTERNET", "PREF"]
    for phone in contact.phones:
        number = str(phone.get("number") or "").strip()
        if not number:
            continue
        if phone.get("extension"):
            number = f"{number} ext. {phone['extension']}"
        line = card.add("tel")
        line.value = number
        line.type_param = _type(_PHONE_TYPES.get(str(phone.get("kind")), "VOICE"), version)
    if contact.organization:
        card.add("org").value = [contact.organization]
    if contact.position:
        card.add("title").value = contact.position
    if contact.updated_at is not None:
        card.add("rev").value = contact.updated_at.strftime("%Y%m%dT%H%M%SZ")
    return str(card.serialize())


def vcards(contacts: Iterable[Contact], version: VCardVersion = "3.0") -> str:
    return "".join(vcard(contact, version) for contact in contacts)


@dataclass(frozen=True)
class Meeting:
    interaction_id: uuid.UUID
    subject: str
    client: str
    starts_at: datetime
    duration_seconds: int | None
    notes: str | None
    version: int
    updated_at: datetime
    overdue: bool


def meetings_calendar(employee_id: uuid.UUID, meetings: Iterable[Meeting], now: datetime) -> bytes:
    """An iCalendar feed of one employee's planned meetings (UID stable per interaction,
    SEQUENCE its version, so calendar clients update moved meetings in place)."""
    calendar = Calendar()
    calendar.add("prodid", "-//Clientele//interactions//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", f"Clientele meetings ({employee_id})")
    for meeting in meetings:
        event = Event()
        event.add("uid", f"{meeting.interaction_id}@clientele")
        event.add("dtstamp", now)
        event.add("dtstart", meeting.starts_at)
        length = timedelta(seconds=meeting.duration_seconds) if meeting.duration_seconds else None
        event.add("dtend", meeting.starts_at + (length or DEFAULT_MEETING))
        event.add("summary", f"{meeting.subject} — {meeting.client}")
        if meeting.notes:
            event.add("description", meeting.notes)
        event.add("sequence", meeting.version - 1)
        event.add("last-modified", meeting.updated_at)
        event.add("status", "CONFIRMED")
        if meeting.overdue:
            event.add("categories", ["OVERDUE"])
        calendar.add_component(event)
    return bytes(calendar.to_ical())


# --- secret calendar feed URLs (the tokens: clientele_shared.calendar_feeds) -----------------


class FeedIssued(BaseModel):
    """A new secret feed URL: shown once (only a digest of its secret is kept)."""

    feed_id: uuid.UUID
    url: str
    """Relative to the service's public address; subscribe to it in the calendar client."""
    created_at: datetime


class FeedRecord(BaseModel):
    """One issued feed token, live or not (who issued and revoked it, when)."""

    feed_id: uuid.UUID
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    revoked_by: str | None
