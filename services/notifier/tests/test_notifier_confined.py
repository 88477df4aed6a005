"""A service's confined token (an automation rule's call for one deal's directions, ADR 49) sees
at the notifier no more than its service's own token does: another requester's deliveries are
404, as they are to the service itself (the confined token is not a service's reach, and must
not fall back to an administrator's view of every delivery either)."""

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

    for headers in (token(False), token(True)):
        one = httpx.get(f"{notifier.url}/v1/deliveries/{delivery['id']}", headers=headers)
        assert one.status_code == 404, one.text
        listed = httpx.get(
            f"{notifier.url}/v1/deliveries",
            params={"requester": "interactions", "idempotency_key": key},
            headers=headers,
        )
        assert listed.status_code == 404, listed.text
        own = httpx.get(
            f"{notifier.url}/v1/deliveries", params={"idempotency_key": key}, headers=headers
        )
        assert own.status_code == 200, own.text
        assert own.json() == []
