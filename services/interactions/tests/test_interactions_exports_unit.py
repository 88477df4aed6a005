"""Unit tests: vCard and iCalendar builders."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import icalendar
import vobject
from clientele_interactions.exports.rules import Contact, Meeting, meetings_calendar, vcards

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _contact(**changes: object) -> Contact:
    data: dict[str, object] = {
        "person_id": uuid.uuid4(),
        "last_name": "Иванова",
        "first_name": "Мария",
        "middle_name": "Петровна",
        "full_name": "Иванова Мария Петровна",
        "emails": ["m@client.example", "maria@home.example"],
        "phones": [{"number": "+74951234567", "kind": "mobile", "extension": "12"}],
        "organization": "ООО «Ромашка»",
        "position": "CFO",
        "updated_at": NOW,
    }
    data.update(changes)
    return Contact(**data)  # type: ignore[arg-type]


def test_vcards_round_trip_in_both_versions() -> None:
    contact = _contact()
    for version in ("3.0", "4.0"):
        text = vcards([contact, _contact(emails=[], phones=[], organization=None)], version)
        cards = list(vobject.readComponents(text))
        assert len(cards) == 2
        first = cards[0]
        assert first.version.value == version
        assert first.n.value.additional == "Петровна"
        assert [e.value for e in first.email_list] == contact.emails
        assert first.tel.value == "+74951234567 ext. 12"
        assert first.org.value == ["ООО «Ромашка»"]
    assert "TYPE=CELL" in vcards([contact], "3.0")
    assert "TYPE=cell" in vcards([contact], "4.0")


def test_the_meetings_calendar() -> None:
    meeting = Meeting(
        interaction_id=uuid.uuid4(),
        subject="Demo",
        client="ООО «Ромашка»",
        starts_at=NOW,
        duration_seconds=None,
        notes="Bring slides",
        version=3,
        updated_at=NOW,
        overdue=True,
    )
    calendar = icalendar.Calendar.from_ical(meetings_calendar(uuid.uuid4(), [meeting], NOW))
    (event,) = calendar.walk("VEVENT")
    assert event.decoded("dtend") - event.decoded("dtstart") == timedelta(hours=1)
    assert event["sequence"] == 2
    assert str(event["description"]) == "Bring slides"
    assert "OVERDUE" in event.to_ical().decode()
