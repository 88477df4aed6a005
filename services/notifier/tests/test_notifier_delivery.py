"""E-mail and webhooks through a real notifier process, a real SMTP server and a real receiver:
delivery once per recipient, retry after failure, bounce, dead letter, replay, result events."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from email.message import EmailMessage

import httpx
import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_testkit.processes import ServiceProcess, wait_for
from notifier_testkit import (
    REQUESTED,
    WEBHOOK_SECRET,
    Publish,
    SmtpServer,
    WebhookReceiver,
    bearer,
    deliveries,
    notifier_env,
)

pytestmark = pytest.mark.integration


def settled(
    notifier: ServiceProcess, issuer: TokenIssuer, key: str, count: int
) -> Callable[[], bool]:
    def check() -> bool:
        found = deliveries(notifier, issuer, key)
        return len(found) == count and all(d["state"] in ("sent", "dead", "bounced") for d in found)

    return check


def test_email_goes_once_to_each_recipient_with_every_part(
    start_service: Callable[..., ServiceProcess],
    smtp: SmtpServer,
    publish: Publish,
    issuer: TokenIssuer,
) -> None:
    notifier = start_service("notifier", **notifier_env(smtp))
    key = f"welcome-{uuid.uuid4()}"
    payload = {
        "idempotency_key": key,
        "channel": "email",
        "kind": "welcome",
        "recipients": [
            {"email": "anna@example.com", "name": "Анна"},
            {"email": "boris@example.org"},
            {"email": "ANNA@example.com"},
        ],
        "subject": "Добро пожаловать",
        "text": "plain body",
        "html": "<p>html body</p>",
        "attachments": [
            {
                "filename": "terms.txt",
                "content_type": "text/plain",
                "content_base64": base64.b64encode(b"the terms").decode(),
            }
        ],
        "reply_to": "manager@clientele.local",
        "list_unsubscribe": "https://clientele.local/unsubscribe/abc",
    }
    first = publish("interactions", REQUESTED, payload)
    publish("interactions", REQUESTED, payload)  # the same request again, as a new event
    publish(  # the very same event redelivered
        "interactions",
        REQUESTED,
        payload,
        event_id=first.event_id,
        aggregate_id=first.aggregate_id,
    )
    wait_for(settled(notifier, issuer, key, 2), 60, "both deliveries to settle")

    found = deliveries(notifier, issuer, key)
    assert {d["recipient"] for d in found} == {"anna@example.com", "boris@example.org"}
    assert {d["state"] for d in found} == {"sent"}
    assert all(d["log"][-1]["outcome"] == "sent" for d in found)
    ids = {d["id"] for d in found}

    def sent_to(address: str) -> list[EmailMessage]:
        """This test's messages to one address (the box is the session's: other tests'
        services, e.g. a registration's confirmation, may have mailed the same address)."""
        return [m for m in smtp.box.to(address) if m["Message-ID"][1:].split("@")[0] in ids]

    assert len(sent_to("anna@example.com")) == 1
    assert len(sent_to("boris@example.org")) == 1

    message = sent_to("anna@example.com")[0]
    assert message["Subject"] == "Добро пожаловать"
    assert message["Reply-To"] == "manager@clientele.local"
    assert message["List-Unsubscribe"] == "<https://clientele.local/unsubscribe/abc>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Анна" in str(message["To"])
    delivery_id = next(d["id"] for d in found if d["recipient"] == "anna@example.com")
    assert message["Message-ID"].startswith(f"<{delivery_id}@")
    body = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert body is not None
    assert "plain body" in body.get_content()
    assert html is not None
    assert "<p>html body</p>" in html.get_content()
    attachments = list(message.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["terms.txt"]
    assert attachments[0].get_content() == "the terms"


def test_email_retry_bounce_and_dead_letter(
    start_service: Callable[..., ServiceProcess],
    smtp: SmtpServer,
    publish: Publish,
    issuer: TokenIssuer,
) -> None:
    smtp.box.fail_next = 1  # the first message is refused with 451: retried
    smtp.box.refuse["gone@example.com"] = "550 5.1.1 no such user"
    smtp.box.refuse["busy@example.net"] = "452 4.2.2 mailbox full"
    notifier = start_service("notifier", **notifier_env(smtp))
    key = f"news-{uuid.uuid4()}"
    publish(
        "interactions",
        REQUESTED,
        {
            "idempotency_key": key,
            "channel": "email",
            "recipients": [
                {"email": "ok@example.com"},
                {"email": "gone@example.com"},
                {"email": "busy@example.net"},
            ],
            "subject": "News",
            "text": "news",
        },
    )
    wait_for(settled(notifier, issuer, key, 3), 60, "the deliveries to settle")
    by_recipient = {d["recipient"]: d for d in deliveries(notifier, issuer, key)}

    ok = by_recipient["ok@example.com"]
    assert ok["state"] == "sent"
    assert len(smtp.box.to("ok@example.com")) == 1

    gone = by_recipient["gone@example.com"]
    assert gone["state"] == "bounced"
    assert gone["attempts"] == 1
    assert "550" in gone["last_error"]

    busy = by_recipient["busy@example.net"]
    assert busy["state"] == "dead"
    assert busy["attempts"] == 3
    assert [entry["outcome"] for entry in busy["log"]] == ["retry", "retry", "dead"]
    assert "gave up after 3 attempts" in busy["dead_letter_reason"]
    assert "452" in busy["dead_letter_reason"]
    assert smtp.box.to("busy@example.net") == []


def test_webhook_signed_retried_dead_lettered_and_replayed(
    start_service: Callable[..., ServiceProcess],
    smtp: SmtpServer,
    receiver: WebhookReceiver,
    publish: Publish,
    issuer: TokenIssuer,
) -> None:
    notifier = start_service("notifier", **notifier_env(smtp))
    name = f"erp-{uuid.uuid4().hex[:8]}"
    created = httpx.post(
        f"{notifier.url}/v1/webhooks",
        json={"name": name, "url": receiver.url, "secret": WEBHOOK_SECRET, "timeout_seconds": 2},
        headers=bearer(issuer),
    )
    assert created.status_code == 201, created.text
    assert "secret" not in created.text
    assert WEBHOOK_SECRET not in created.text
    listed = httpx.get(f"{notifier.url}/v1/webhooks", headers=bearer(issuer))
    assert WEBHOOK_SECRET not in listed.text
    forbidden = httpx.get(
        f"{notifier.url}/v1/webhooks", headers=bearer(issuer, "sam", roles=("sales",))
    )
    assert forbidden.status_code == 403

    receiver.statuses = [503]  # the first call fails: retried
    key = f"deal-{uuid.uuid4()}"
    publish(
        "interactions",
        REQUESTED,
        {
            "idempotency_key": key,
            "channel": "webhook",
            "kind": "deal.won",
            "recipients": [{"endpoint": name}],
            "subject": "Deal won",
            "text": "ООО «Ромашка»",
            "data": {"deal": 42},
        },
    )
    wait_for(settled(notifier, issuer, key, 1), 60, "the webhook to be delivered")
    (delivered,) = deliveries(notifier, issuer, key)
    assert delivered["state"] == "sent"
    assert [entry["outcome"] for entry in delivered["log"]] == ["retry", "sent"]
    calls = [r for r in receiver.received if r.delivery_id == delivered["id"]]
    assert len(calls) == 2
    assert all(call.verified for call in calls)
    assert calls[-1].body["data"] == {"deal": 42}
    assert calls[-1].body["text"] == "ООО «Ромашка»"

    receiver.statuses = [500, 500, 500]  # every attempt fails: dead letter, then a replay
    key = f"deal-{uuid.uuid4()}"
    publish(
        "interactions",
        REQUESTED,
        {
            "idempotency_key": key,
            "channel": "webhook",
            "recipients": [{"endpoint": name}, {"endpoint": "nobody"}],
            "subject": "Deal lost",
            "text": "lost",
        },
    )
    wait_for(settled(notifier, issuer, key, 2), 60, "the webhooks to fail")
    found = {d["recipient"]: d for d in deliveries(notifier, issuer, key)}
    assert found["nobody"]["state"] == "dead"
    assert "no webhook endpoint" in found["nobody"]["dead_letter_reason"]
    dead = found[name]
    assert dead["state"] == "dead"
    assert dead["attempts"] == 3
    assert "HTTP 500" in dead["dead_letter_reason"]

    not_replayable = httpx.post(
        f"{notifier.url}/v1/deliveries/{delivered['id']}/replay", headers=bearer(issuer)
    )
    assert not_replayable.status_code == 409
    assert not_replayable.headers["content-type"] == "application/problem+json"
    replayed = httpx.post(
        f"{notifier.url}/v1/deliveries/{dead['id']}/replay", headers=bearer(issuer)
    )
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["dead_letter_reason"] is None
    wait_for(settled(notifier, issuer, key, 2), 60, "the replay to be delivered")
    after = {d["recipient"]: d for d in deliveries(notifier, issuer, key)}[name]
    assert after["state"] == "sent"
    assert after["log"][-2]["outcome"] == "replayed"
    assert [r.verified for r in receiver.received if r.delivery_id == dead["id"]] == [True] * 4


def test_preferences_suppress_and_digest_an_employees_email(
    start_service: Callable[..., ServiceProcess],
    smtp: SmtpServer,
    publish: Publish,
    issuer: TokenIssuer,
) -> None:
    notifier = start_service("notifier", **notifier_env(smtp))
    employee = f"emp-{uuid.uuid4().hex[:8]}"
    address = f"{employee}@example.com"
    me = bearer(issuer, employee, roles=("sales",))
    prefs = f"{notifier.url}/v1/preferences/me"
    saved = httpx.put(
        prefs, json={"channels": {"marketing": ["inapp"]}, "digest": "daily"}, headers=me
    )
    assert saved.status_code == 200, saved.text
    keys = [f"p-{uuid.uuid4()}" for _ in range(3)]
    for key, kind in zip(keys, ["marketing", "deal.won", "deal.lost"], strict=True):
        publish(
            "pipeline",
            "pipeline.notification.requested",
            {
                "idempotency_key": key,
                "channel": "email",
                "kind": kind,
                "recipients": [{"email": address, "employee_id": employee}],
                "subject": kind,
                "text": f"about {kind}",
            },
        )

    def states() -> list[str]:
        return [d["state"] for key in keys for d in deliveries(notifier, issuer, key, "pipeline")]

    wait_for(lambda: states() == ["suppressed", "digest", "digest"], 60, "held for the digest")
    assert smtp.box.to(address) == []
    assert httpx.put(prefs, json={"digest": "off"}, headers=me).status_code == 200
    wait_for(lambda: len(smtp.box.to(address)) == 1, 60, "the digest to be sent")
    digest = smtp.box.to(address)[0]
    assert digest["Subject"] == "Your digest: 2 notification(s)"
    body = digest.get_body(preferencelist=("plain",))
    assert body is not None
    assert "deal.won: about deal.won" in body.get_content()
    assert "marketing" not in body.get_content()
    assert states() == ["suppressed", "digested", "digested"]


def test_webhook_urls_to_internal_addresses_are_refused_unless_allowed(
    start_service: Callable[..., ServiceProcess],
    smtp: SmtpServer,
    receiver: WebhookReceiver,
    publish: Publish,
    issuer: TokenIssuer,
) -> None:
    """The guard refuses loopback, private, link-local and metadata addresses when an endpoint
    is configured (422) and again when it is called (an address that changed since)."""
    allowing = start_service("notifier", **notifier_env(smtp, RUN_WORKERS="false"))
    strict = start_service("notifier", **notifier_env(smtp, WEBHOOK_ALLOWED_HOSTS=""))
    admin = bearer(issuer)
    refused = {
        receiver.url: "127.0.0.1 is a loopback address",
        f"http://localhost:{receiver.port}/hook": "localhost resolves to",
        "https://[::1]/hook": "::1 is a loopback address",
        "https://169.254.169.254/latest/meta-data/": "a cloud metadata address",
        "https://169.254.10.10/": "a link-local address",
        "https://10.20.30.40/erp": "a private address",
        "https://192.168.0.10/erp": "a private address",
    }
    for url, reason in refused.items():
        name = f"bad-{uuid.uuid4().hex[:8]}"
        answer = httpx.post(
            f"{strict.url}/v1/webhooks",
            json={"name": name, "url": url, "secret": WEBHOOK_SECRET},
            headers=admin,
        )
        assert answer.status_code == 422, (url, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        problem = answer.json()
        assert problem["type"].endswith("/webhook-url-refused")
        assert reason in problem["detail"], problem
        assert problem["errors"][0]["location"] == ["body", "url"]
        names = [e["name"] for e in httpx.get(f"{strict.url}/v1/webhooks", headers=admin).json()]
        assert name not in names

    name = f"erp-{uuid.uuid4().hex[:8]}"
    created = httpx.post(
        f"{allowing.url}/v1/webhooks",
        json={"name": name, "url": receiver.url, "secret": WEBHOOK_SECRET},
        headers=admin,
    )
    assert created.status_code == 201, created.text  # 127.0.0.1 is allowed by its settings
    endpoint = created.json()
    moved = httpx.patch(
        f"{strict.url}/v1/webhooks/{endpoint['id']}",
        json={"url": "https://169.254.169.254/latest/meta-data/"},
        headers=admin,
    )
    assert moved.status_code == 422
    kept = httpx.get(f"{strict.url}/v1/webhooks/{endpoint['id']}", headers=admin).json()
    assert kept["url"] == receiver.url

    key = f"deal-{uuid.uuid4()}"
    publish(
        "interactions",
        REQUESTED,
        {
            "idempotency_key": key,
            "channel": "webhook",
            "recipients": [{"endpoint": name}],
            "subject": "Deal won",
            "text": "won",
        },
    )
    wait_for(settled(strict, issuer, key, 1), 60, "the webhook delivery to be refused")
    (refusal,) = deliveries(strict, issuer, key)
    assert refusal["state"] == "dead"
    assert refusal["attempts"] == 1  # a refusal is not retried
    assert "refused: 127.0.0.1 is a loopback address" in refusal["dead_letter_reason"]
    assert [r for r in receiver.received if r.delivery_id == refusal["id"]] == []
