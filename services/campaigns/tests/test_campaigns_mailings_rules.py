"""Mailing rules without infrastructure: who is excluded and why, positions, the signed
unsubscribe token, the notifier's idempotency key."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from clientele_campaigns.consent.rules import ConsentEntry
from clientele_campaigns.contacts.rules import Contact, Employment, phone_key, recorded_gender
from clientele_campaigns.mailings.rules import (
    Candidate,
    Recurrence,
    candidates_at,
    classify,
    holds_position,
    idempotency_key,
    next_issue,
    parse_idempotency_key,
    read_unsubscribe_token,
    unsubscribe_token,
)
from clientele_campaigns.templates.rules import TemplateParts, check, compile_parts, context
from clientele_shared.directory_read_models import OrganizationRecord, PersonRecord
from pydantic import ValidationError

ORG = uuid.uuid4()
TEMPLATE = compile_parts(
    TemplateParts(
        subject="{{ person.salutation }}",
        text="{{ person.dative.first_middle }}, {{ organization.name }} {{ unsubscribe_url }}",
    )
)


def _consent(granted: bool, source: str = "form") -> ConsentEntry:
    return ConsentEntry(
        id=1,
        person_id=uuid.uuid4(),
        channel="email",
        granted=granted,
        source=source,  # type: ignore[arg-type]
        recorded_at=datetime.now(UTC),
        actor_subject="alice",
    )


def _case(
    *,
    first: str | None = "Иван",
    blocked: bool = False,
    org_blocked: bool = False,
    consent: ConsentEntry | None = None,
    emails: tuple[str, ...] = ("ivan@example.ru",),
) -> tuple[str, str | None]:
    person_id = uuid.uuid4()
    person = PersonRecord(
        person_id=person_id,
        first_name=first,
        middle_name="Петрович",
        last_name="Иванов",
        blocked=blocked,
        version=1,
    )
    organization = OrganizationRecord(
        organization_id=ORG, legal_name="ООО «Ромашка»", blocked=org_blocked, version=1
    )
    contact = Contact(
        person_id=person_id,
        emails=list(emails),
        employments=[Employment(organization_id=ORG, position="Бухгалтер")],
    )
    values = context(
        person=person,
        contact=contact,
        organization=organization,
        email=contact.email_at(ORG),
        event=None,
        mailing_title="Новости",
        unsubscribe_url="https://x/u",
    )
    resolved = classify(
        Candidate(person_id, ORG),
        person=person,
        organization=organization,
        contact=contact,
        consent=consent,
        template=TEMPLATE,
        context=values,
    )
    return resolved.status if resolved.reason is None else resolved.reason, resolved.detail


def test_exclusion_reasons_in_order() -> None:
    yes = _consent(True)
    assert _case(consent=yes) == ("pending", None)
    assert _case(consent=None) == ("no_consent", None)
    assert _case(consent=_consent(False, "call")) == ("no_consent", None)
    assert _case(consent=_consent(False, "unsubscribe")) == ("unsubscribed", None)
    assert _case(consent=yes, blocked=True) == ("blocked_person", None)
    assert _case(consent=yes, org_blocked=True) == ("blocked_organization", None)
    assert _case(consent=yes, emails=()) == ("no_address", None)
    assert _case(consent=yes, first=None) == (
        "missing_field",
        "person.dative.first_middle, person.salutation",
    )


def test_positions_match_case_insensitively_by_part() -> None:
    assert holds_position("Главный бухгалтер", ["БУХГАЛТЕР"])
    assert not holds_position("Директор", ["бухгалтер"])
    assert not holds_position(None, ["бухгалтер"])
    assert holds_position(None, [])
    other = uuid.uuid4()
    person = uuid.uuid4()
    contacts = [
        Contact(
            person_id=person,
            employments=[
                Employment(organization_id=max(ORG, other), position="Бухгалтер"),
                Employment(organization_id=min(ORG, other), position="Бухгалтер"),
            ],
        )
    ]
    found = candidates_at(contacts, {ORG, other}, ["бухгалтер"])
    assert found == [Candidate(person, min(ORG, other))]  # once, at the first organization


def test_unsubscribe_token_is_signed() -> None:
    key, mailing, person = b"k" * 32, uuid.uuid4(), uuid.uuid4()
    token = unsubscribe_token(key, mailing, person)
    assert read_unsubscribe_token(key, token) == (mailing, person)
    assert read_unsubscribe_token(b"x" * 32, token) is None
    body, mac = token.split(".")
    forged = unsubscribe_token(key, mailing, uuid.uuid4()).split(".")[0]
    for bad in [f"{forged}.{mac}", f"{body}.{mac[:-2]}AA", "", ".", "a.b.c", "é.é", "x" * 200]:
        assert read_unsubscribe_token(key, bad) is None


def test_idempotency_key_round_trip() -> None:
    mailing, person = uuid.uuid4(), uuid.uuid4()
    assert parse_idempotency_key(idempotency_key(mailing, person)) == (mailing, person)
    for other in ["automation:1:2", "mailing:x:y", "mailing:1"]:
        assert parse_idempotency_key(other) is None


@pytest.mark.parametrize(
    ("value", "expected"), [("Ж", "female"), ("мужской", "male"), ("x", None), (5, None)]
)
def test_recorded_gender(value: object, expected: str | None) -> None:
    assert recorded_gender({"пол": value}) == expected


def test_template_check_reports_fields_and_problems() -> None:
    good = check(
        TemplateParts(subject="Привет", html="{{ person.salutation }} {{ unsubscribe_url }}")
    )
    assert good.problems == []
    assert good.required == ["person.salutation", "unsubscribe_url"]
    assert good.unsubscribe_link
    bad = check(TemplateParts(subject="{{ persona }}", text="{% for %}"))
    assert {(p.part, p.kind) for p in bad.problems} == {
        ("subject", "unknown_variable"),
        ("text", "syntax"),
    }


def _at(text: str, zone: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))


@pytest.mark.parametrize(
    ("every", "interval", "previous", "anchor", "expected"),
    [
        ("day", 1, "2026-12-31T09:00", 31, "2027-01-01T09:00"),
        ("week", 2, "2026-12-28T09:00", 28, "2027-01-11T09:00"),
        ("month", 1, "2027-01-31T09:00", 31, "2027-02-28T09:00"),
        ("month", 1, "2028-01-31T09:00", 31, "2028-02-29T09:00"),
        ("month", 1, "2027-02-28T09:00", 31, "2027-03-31T09:00"),
        ("month", 12, "2028-02-29T09:00", 29, "2029-02-28T09:00"),
    ],
)
def test_next_issue(every: str, interval: int, previous: str, anchor: int, expected: str) -> None:
    recurrence = Recurrence.model_validate(
        {"every": every, "interval": interval, "at": "09:00", "time_zone": "Asia/Vladivostok"}
    )
    found = next_issue(recurrence, _at(previous, "Asia/Vladivostok"), anchor)
    assert found == _at(expected, "Asia/Vladivostok")


def test_next_issue_keeps_the_local_hour_across_a_clock_change() -> None:
    recurrence = Recurrence.model_validate(
        {"every": "day", "at": "09:30", "time_zone": "America/New_York"}
    )
    before = datetime(2026, 3, 7, 14, 30, tzinfo=UTC)  # 09:30 EST
    after = next_issue(recurrence, before, 7)
    assert after.astimezone(UTC) == datetime(2026, 3, 8, 13, 30, tzinfo=UTC)  # 09:30 EDT


@pytest.mark.parametrize(
    "bad",
    [
        {"every": "hour", "at": "09:00"},
        {"every": "day", "at": "25:00"},
        {"every": "day", "at": "09:00", "time_zone": "Mars/Olympus"},
        {"every": "day", "at": "09:00+03:00"},
        {"every": "day", "at": "09:00", "interval": 0},
    ],
)
def test_bad_recurrence(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Recurrence.model_validate(bad)


@pytest.mark.parametrize(
    ("written", "key"),
    [
        ("+74951234567", "+74951234567"),
        ("+7 (495) 123-45-67", "+74951234567"),
        ("8 (495) 123-45-67", "+74951234567"),
        ("84951234567", "+74951234567"),
        ("+44 20 7946 0958", "+442079460958"),
        ("123", None),
        ("", None),
        (None, None),
        (12345678, None),
    ],
)
def test_phone_keys_compare_numbers_as_written(written: object, key: str | None) -> None:
    assert phone_key(written) == key
