"""Idempotency-Key on the notifier's creates: a retried POST /v1/webhooks is answered once."""

import uuid
from collections.abc import Callable

import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_testkit.idempotency import IdempotentCreate, check_idempotent_create, scalar
from clientele_testkit.infra import Infrastructure
from clientele_testkit.processes import ServiceProcess
from notifier_testkit import WEBHOOK_SECRET, SmtpServer, bearer, notifier_env

pytestmark = pytest.mark.integration


def test_a_retried_webhook_registration_is_answered_once(
    start_service: Callable[..., ServiceProcess],
    smtp: SmtpServer,
    issuer: TokenIssuer,
    infra: Infrastructure,
) -> None:
    notifier = start_service("notifier", **notifier_env(smtp))
    database = infra.test_database_url("notifier")

    def new_body() -> dict[str, object]:
        return {
            "name": f"erp-{uuid.uuid4().hex[:10]}",
            "url": "http://127.0.0.1:9/hook",
            "secret": WEBHOOK_SECRET,
        }

    def count(body: dict[str, object]) -> int:
        sql = "SELECT count(*) FROM webhook_endpoints WHERE name = :name"
        return int(scalar(database, sql, name=body["name"]))

    check_idempotent_create(
        IdempotentCreate(
            url=f"{notifier.url}/v1/webhooks",
            caller=bearer(issuer, "root"),
            other_caller=bearer(issuer, "other-admin"),
            new_body=new_body,
            count=count,
            refuses_duplicates=True,  # endpoint names are unique: the second is a 409
        )
    )
