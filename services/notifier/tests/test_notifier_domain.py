"""Unit tests of the notifier's domain: back-off, outcomes, signatures, quiet hours,
preferences, templates, and the request schema's rules."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from clientele_notifier.deliveries.rules import (
    DeliveryRetryPolicy,
    DeliveryState,
    EmployeeContact,
    Outcome,
    SendResult,
    after_failure,
    email_target,
    rate_limit_key,
    recipient_address,
    render,
)
from clientele_notifier.preferences.rules import Preferences, quiet_until
from clientele_notifier.webhooks.rules import sign, verify
from clientele_shared.events.schemas.notifications import (
    Channel,
    NotificationRequested,
    Recipient,
)
from pydantic import ValidationError

UTC = dt.UTC


def test_backoff_doubles_with_jitter_in_the_upper_half_and_is_capped() -> None:
    policy = DeliveryRetryPolicy(max_attempts=10, initial_backoff=2.0, max_backoff=30.0)
    rng = random.Random(7)
    for attempt, ceiling in [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 30.0), (9, 30.0)]:
        delays = [policy.backoff(attempt, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 10  # jitter spreads them


def test_after_failure_retries_until_the_last_attempt() -> None:
    policy = DeliveryRetryPolicy(max_attempts=3, initial_backoff=1)
    transient = SendResult(Outcome.RETRY, "451")
    assert after_failure(policy, 1, transient) is DeliveryState.RETRY
    assert after_failure(policy, 3, transient) is DeliveryState.DEAD
    assert after_failure(policy, 1, SendResult(Outcome.BOUNCED)) is DeliveryState.BOUNCED
    assert after_failure(policy, 1, SendResult(Outcome.FAILED)) is DeliveryState.DEAD


def test_signature_verifies_and_rejects_tampering_staleness_and_wrong_secret() -> None:
    secret, body, ts = b"k" * 32, b'{"a":1}', 1_700_000_000
    signature = sign(secret, ts, body)
    assert signature.startswith("v1=")
    assert verify(secret, str(ts), signature, body, now=ts + 10)
    assert not verify(secret, str(ts), signature, b'{"a":2}', now=ts)
    assert not verify(secret, str(ts + 1), signature, body, now=ts)
    assert not verify(b"x" * 32, str(ts), signature, body, now=ts)
    assert not verify(secret, str(ts), signature, body, now=ts + 301)  # a replay, too late
    assert not verify(secret, "not-a-time", signature, body, now=ts)
    rotated = f"{sign(b'old' * 11, ts, body)}, {signature}"
    assert verify(secret, str(ts), rotated, body, now=ts)


@pytest.mark.parametrize(
    ("now", "start", "end", "zone", "expected"),
    [
        ("2026-03-10T23:30:00+00:00", "22:00", "07:00", "UTC", "2026-03-11T07:00:00+00:00"),
        ("2026-03-11T06:59:00+00:00", "22:00", "07:00", "UTC", "2026-03-11T07:00:00+00:00"),
        ("2026-03-11T07:00:00+00:00", "22:00", "07:00", "UTC", None),
        ("2026-03-11T12:00:00+00:00", "13:00", "14:00", "UTC", None),
        ("2026-03-11T13:30:00+00:00", "13:00", "14:00", "UTC", "2026-03-11T14:00:00+00:00"),
        # 20:00 UTC is 23:00 in Moscow: quiet until 07:00 Moscow = 04:00 UTC
        (
            "2026-03-10T20:00:00+00:00",
            "22:00",
            "07:00",
            "Europe/Moscow",
            "2026-03-11T04:00:00+00:00",
        ),
        ("2026-03-10T20:00:00+00:00", None, None, "UTC", None),
    ],
)
def test_quiet_hours(
    now: str, start: str | None, end: str | None, zone: str, expected: str | None
) -> None:
    result = quiet_until(dt.datetime.fromisoformat(now), start, end, zone)
    assert result == (dt.datetime.fromisoformat(expected) if expected else None)


def test_preferences_plan_suppresses_delays_and_digests() -> None:
    now = dt.datetime(2026, 3, 10, 23, 0, tzinfo=UTC)
    prefs = Preferences(
        channels={"*": ["inapp", "email"], "marketing": ["inapp"]},
        quiet_start="22:00",
        quiet_end="07:00",
    )
    assert prefs.plan("marketing", Channel.EMAIL, now) == (DeliveryState.SUPPRESSED, now)
    assert prefs.plan("marketing", Channel.INAPP, now) == (DeliveryState.PENDING, now)
    state, when = prefs.plan("deal.assigned", Channel.EMAIL, now)
    assert state is DeliveryState.PENDING
    assert when == dt.datetime(2026, 3, 11, 7, 0, tzinfo=UTC)
    assert Preferences().plan("x", Channel.WEBHOOK, now) == (DeliveryState.PENDING, now)
    digest = Preferences(digest="daily")
    assert digest.plan("x", Channel.EMAIL, now)[0] is DeliveryState.DIGEST
    with pytest.raises(ValidationError):
        Preferences(quiet_start="22:00")
    for zone in ("Nowhere/City", "Europe", "zone.tab"):  # a folder or a data file: no zone
        with pytest.raises(ValidationError):
            Preferences(timezone=zone)


def test_templates_escape_html_values() -> None:
    content = render(
        "D-1", None, None, "deal-assigned", {"deal": "<b>D-1</b>", "organization": "A & B"}
    )
    assert content.subject == "Deal assigned: <b>D-1</b>"
    assert "A & B" in content.text
    assert content.html is not None
    assert "&lt;b&gt;D-1&lt;/b&gt;" in content.html
    assert "A &amp; B" in content.html
    plain = render("Hi", None, "<p>Hello &amp; welcome</p>", None, {})
    assert plain.text == "Hello & welcome"


def test_rate_limit_counts_by_recipient_domain() -> None:
    assert rate_limit_key(Channel.EMAIL, "a@Example.COM") == "email:example.com"
    assert rate_limit_key(Channel.WEBHOOK, "erp") == "webhook:erp"


def test_request_schema_needs_an_address_for_its_channel_and_a_body() -> None:
    base = {"idempotency_key": "k", "subject": "s", "text": "t"}
    NotificationRequested.model_validate(
        {**base, "channel": "email", "recipients": [{"email": "a@b.cd"}]}
    )
    NotificationRequested.model_validate(  # an employee's current address is looked up
        {**base, "channel": "email", "recipients": [{"employee_id": "e1"}]}
    )
    with pytest.raises(ValidationError, match="needs email or employee_id"):
        NotificationRequested.model_validate(
            {**base, "channel": "email", "recipients": [{"name": "Анна"}]}
        )
    with pytest.raises(ValidationError, match="needs endpoint"):
        NotificationRequested.model_validate(
            {**base, "channel": "webhook", "recipients": [{"employee_id": "e1"}]}
        )
    with pytest.raises(ValidationError, match="text, html or a template"):
        NotificationRequested.model_validate(
            {
                "idempotency_key": "k",
                "subject": "s",
                "channel": "inapp",
                "recipients": [{"employee_id": "e1"}],
            }
        )
    with pytest.raises(ValidationError):
        NotificationRequested.model_validate(
            {**base, "channel": "email", "recipients": [{"email": "not-an-address"}]}
        )


def test_recipient_addresses_per_channel() -> None:
    both = Recipient(email="Anna@Example.com", employee_id="e1")
    assert recipient_address(Channel.EMAIL, both) == "anna@example.com"
    assert recipient_address(Channel.EMAIL, Recipient(employee_id="e1")) == "employee:e1"
    assert recipient_address(Channel.INAPP, both) == "e1"
    assert recipient_address(Channel.WEBHOOK, Recipient(endpoint="erp")) == "erp"
    with pytest.raises(ValueError, match="needs a recipient address"):
        recipient_address(Channel.WEBHOOK, both)


def test_email_target_follows_the_employee_and_spares_an_inactive_one() -> None:
    ivan = EmployeeContact("Ivan@Example.com", "Иван", active=True)
    gone = EmployeeContact("old@example.com", "Пётр", active=False)
    by_id = email_target("employee:e1", "e1", ivan)
    assert (by_id.address, by_id.name, by_id.refusal) == ("ivan@example.com", "Иван", None)
    explicit = email_target("anna@example.com", "e1", ivan)
    assert explicit.address == "anna@example.com"
    assert email_target("anna@example.com", None, None).address == "anna@example.com"
    for recipient in ("employee:e2", "old@example.com"):
        refused = email_target(recipient, "e2", gone)
        assert refused.suppressed
        assert refused.refusal is not None
        assert "employee e2 is inactive" in refused.refusal.detail
    unknown = email_target("employee:e3", "e3", None)
    assert not unknown.suppressed
    assert unknown.refusal == SendResult(
        Outcome.RETRY, "no e-mail address is known for employee e3"
    )
    no_address = email_target("employee:e4", "e4", EmployeeContact(None, "Без почты", True))
    assert no_address.refusal is not None
    assert no_address.refusal.outcome is Outcome.RETRY
