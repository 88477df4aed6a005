"""A service's confined token (an automation rule's call for one deal's directions, ADR 49) holds
no role, so the notifier's operator endpoints (deliveries, complaints) refuse it (403); the
service's own token sees only its own requests: another requester's deliveries are 404."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_testkit.processes import ServiceProcess, wait_for
from notifier_testkit import REQUESTED, Publish, SmtpServer, deliveries, notifier_env

pytestmark = pytest.mark.integration


def test_a_confined_token_sees_only_its_own_services_deliveries(
    start_service: Callable[..., ServiceProcess],
    smtp: SmtpServer,
    publish: Publish,
    issuer: TokenIssuer,
) -> None:
    notifier = start_service("notifier", **notifier_env(smtp))
    key = f"confined-{uuid.uuid4()}"
    payload = {
        "idempotency_key": key,
        "channel": "email",
        "kind": "welcome",
        "recipients": [{"email": "anna@example.com"}],
        "subject": "Привет",
        "text": "plain body",
    }
    publish("interactions", REQUESTED, payload)
    wait_for(lambda: len(deliveries(notifier, issuer, key)) == 1, 60, "the delivery")
    (delivery,) = deliveries(notifier, issuer, key)

    def token(confined: bool) -> dict[str, str]:
        minted = issuer.mint(
            "svc-pipeline",
            roles=["service"],
            directions=["north"],
            service="pipeline",
            confined=confined,
        )
        return {"Authorization": f"Bearer {minted}"}

    confined = token(True)  # holds no role: the operators' endpoints refuse it (403)
    refused = [
        httpx.get(f"{notifier.url}/v1/deliveries/{delivery['id']}", headers=confined),
        httpx.get(
            f"{notifier.url}/v1/deliveries", params={"idempotency_key": key}, headers=confined
        ),
        httpx.post(f"{notifier.url}/v1/complaints", content=b"report", headers=confined),
    ]
    assert [response.status_code for response in refused] == [403, 403, 403]
    service = token(False)
    one = httpx.get(f"{notifier.url}/v1/deliveries/{delivery['id']}", headers=service)
    assert one.status_code == 404, one.text
    listed = httpx.get(
        f"{notifier.url}/v1/deliveries",
        params={"requester": "interactions", "idempotency_key": key},
        headers=service,
    )
    assert listed.status_code == 404, listed.text
    own = httpx.get(
        f"{notifier.url}/v1/deliveries", params={"idempotency_key": key}, headers=service
    )
    assert own.status_code == 200, own.text
    assert own.json() == []
