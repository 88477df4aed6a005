"""Complaints (feedback-loop reports, RFC 5965): the report parsed, and a real notifier
publishing one sent e-mail's complaint once."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from clientele_notifier.complaints.rules import ReportInvalid, complained_delivery
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.catalog import DELIVERIES
from clientele_shared.events.schemas.notifier import DELIVERY_COMPLAINED
from clientele_testkit.infra import Infrastructure
from clientele_testkit.processes import ServiceProcess, wait_for
from notifier_testkit import (
    REQUESTED,
    EventTail,
    Publish,
    SmtpServer,
    bearer,
    deliveries,
    notifier_env,
)

DOMAIN = "mail.clientele.test"


def arf(message_id: str, feedback: str = "abuse", *, whole: bool = True) -> bytes:
    """A feedback report as mailbox providers send them: a human part, the machine part, and
    the original message (or only its headers)."""
    report = EmailMessage()
    report["From"] = "fbl@provider.example"
    report["To"] = "abuse@clientele.test"
    report["Subject"] = "FW: complaint"
    report.set_content("This is an email abuse report.")
    report.make_mixed()
    part = EmailMessage()
    part.set_payload(f"Feedback-Type: {feedback}\r\nUser-Agent: fbl/1.0\r\nVersion: 1\r\n")
    part["Content-Type"] = "message/feedback-report"
    report.attach(part)
    original = EmailMessage()
    original["Message-ID"] = message_id
    original["Subject"] = "Новости"
    original.set_content("Текст письма")
    if whole:
        wrapper = EmailMessage()
        wrapper.set_content(original)  # message/rfc822
        report.attach(wrapper)
    else:
        headers = EmailMessage()
        headers.set_payload(f"Message-ID: {message_id}\r\nSubject: x\r\n")
        headers["Content-Type"] = "text/rfc822-headers"
        report.attach(headers)
    report.replace_header("Content-Type", 'multipart/report; report-type="feedback-report"')
    return bytes(report)


def test_a_report_names_the_delivery_of_its_original() -> None:
    delivery = uuid.uuid4()
    assert complained_delivery(arf(f"<{delivery}@{DOMAIN}>"), DOMAIN) == delivery
    assert complained_delivery(arf(f"<{delivery}@{DOMAIN}>", whole=False), DOMAIN) == delivery
    assert complained_delivery(arf(f"<{delivery}@{DOMAIN}>", "fraud"), DOMAIN) == delivery
    bad = [
        arf(f"<{delivery}@{DOMAIN}>", "not-spam"),
        arf(f"<{delivery}@elsewhere.example>"),
        arf("<not-a-uuid@mail.clientele.test>"),
        b"",
        b"\0\0garbage",
        "Subject: ни разу не отчёт\n\nтекст".encode(),
    ]
    for report in bad:
        with pytest.raises(ReportInvalid):
            complained_delivery(report, DOMAIN)


@pytest.mark.integration
def test_a_complaint_about_a_sent_email_is_published_once(
    start_service: Callable[..., ServiceProcess],
    smtp: SmtpServer,
    publish: Publish,
    issuer: TokenIssuer,
    infra: Infrastructure,
) -> None:
    notifier = start_service("notifier", **notifier_env(smtp, MESSAGE_ID_DOMAIN=DOMAIN))
    key = f"mailing-{uuid.uuid4()}"
    payload = {
        "idempotency_key": key,
        "channel": "email",
        "kind": "mailing",
        "recipients": [{"email": "reader@example.com"}],
        "subject": "Новости",
        "text": "Текст письма",
    }
    publish("interactions", REQUESTED, payload)

    def sent() -> list[dict[str, Any]]:
        found = deliveries(notifier, issuer, key)
        return [d for d in found if d["state"] == "sent"]

    wait_for(lambda: len(sent()) == 1, 120, "the e-mail sent")
    [delivery] = sent()
    [message] = smtp.box.to("reader@example.com")
    service = bearer(issuer, "feedback-reader", ("service",))
    url = f"{notifier.url}/v1/complaints"
    headers = {**service, "Content-Type": 'multipart/report; report-type="feedback-report"'}
    with EventTail(infra.kafka_bootstrap_servers, DELIVERIES) as tail:
        first = httpx.post(url, content=arf(message["Message-ID"]), headers=headers, timeout=30)
        assert first.status_code == 202, first.text
        assert first.json() == {"delivery_id": delivery["id"], "recorded": True}
        again = httpx.post(url, content=arf(message["Message-ID"]), headers=headers, timeout=30)
        assert again.json() == {"delivery_id": delivery["id"], "recorded": False}
        wait_for(lambda: len(tail.of_type(DELIVERY_COMPLAINED)) >= 1, 30, "the complaint event")
        [event] = tail.of_type(DELIVERY_COMPLAINED)
    assert event.payload["idempotency_key"] == key
    assert event.payload["requester"] == "interactions"
    assert event.payload["recipient"] == "reader@example.com"
    log = deliveries(notifier, issuer, key)[0]["log"]
    assert [entry["outcome"] for entry in log][-1] == "complained"

    unknown = arf(f"<{uuid.uuid4()}@{DOMAIN}>")
    assert httpx.post(url, content=unknown, headers=headers, timeout=30).status_code == 422
    no_complaint = arf(message["Message-ID"], "not-spam")
    answer = httpx.post(url, content=no_complaint, headers=headers, timeout=30)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    user = bearer(issuer, "alice", ("manager",))
    assert (
        httpx.post(
            url, content=arf(message["Message-ID"]), headers={**headers, **user}, timeout=30
        ).status_code
        == 403
    )
