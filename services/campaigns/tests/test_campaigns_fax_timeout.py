"""A fax handed to the gateway through the notifier whose callback never comes ends as failed
after the configured timeout, instead of staying queued forever (ADR 47); a fax still within it
and one already reported are left alone, and a callback after the timeout changes nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from clientele_campaigns.app import PUBLISHES
from clientele_campaigns.mailings import service as mailings
from clientele_campaigns.settings import CampaignsSettings
from clientele_campaigns.tables import metadata
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.catalog import MAILING_RESULTS, notification_requests
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.storage import LocalDiskStorage
from clientele_testkit.infra import Infrastructure
from clientele_testkit.stack import Stack, running
from mailings_testkit import PUBLIC_URL, consent, contact, premises

NORTH = ["north"]
REQUESTS = notification_requests("campaigns")


@pytest.fixture(scope="module")
def files_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fax-timeout")


@pytest.fixture(scope="module")
def stack(
    infra: Infrastructure,
    service_env: dict[str, str],
    campaigns_migrated: str,
    issuer: TokenIssuer,
    tmp_path_factory: pytest.TempPathFactory,
    files_dir: Path,
) -> Iterator[Stack]:
    env = {
        **service_env,
        "RUN_MAILING_WORKER": "false",
        "PUBLIC_BASE_URL": PUBLIC_URL,
        "ATTACHMENT_STORAGE": "local",
        "ATTACHMENTS_DIR": str(files_dir),
    }
    logs = tmp_path_factory.mktemp("fax-timeout-logs")
    with running("campaigns", infra, env, campaigns_migrated, issuer, logs) as stack:
        yield stack


def _step(stack: Stack, files_dir: Path, step: str, timeout_minutes: int = 45) -> int:
    """One of the worker's steps in this process: ``hand_over`` (prepare and hand the faxes
    to the notifier) or ``expire`` (fail the faxes with no callback within the timeout)."""

    async def run() -> int:
        settings = CampaignsSettings(
            database_url=stack.database_url,  # type: ignore[arg-type]
            kafka_bootstrap_servers=stack.bootstrap,
            public_base_url=PUBLIC_URL,
            fax_callback_timeout_minutes=timeout_minutes,
        )
        runtime = ServiceRuntime(settings, metadata, publishes=PUBLISHES)
        try:
            if step == "expire":
                return await mailings.fail_unanswered_faxes(runtime, settings)
            assert await mailings.prepare_due(runtime)
            return await mailings.hand_over(runtime, settings, LocalDiskStorage(files_dir))
        finally:
            await runtime.producer.stop()
            await runtime.engine.dispose()

    return asyncio.run(run())


def test_a_fax_without_a_callback_ends_as_failed(stack: Stack, files_dir: Path) -> None:
    stack.execute("UPDATE mailings SET status = 'cancelled' WHERE status <> 'done'")
    north = stack.user(NORTH)
    faxed = premises(stack, "АО «Факсимиле»", postal_address=None, fax="+74951234567")
    silent, recent, answered = (
        contact(stack, first=name, middle=None, last="Факсов", organization=faxed)
        for name in ("Иван", "Пётр", "Анна")
    )
    for person in (silent, recent, answered):
        consent(stack, person, channel="fax")
    body = {
        "title": "Приглашение",
        "directions": NORTH,
        "channel": "fax",
        "template": {"subject": "Приглашение", "text": "{{ person.salutation }}!"},
        "audience": {"kind": "organizations", "organization_ids": [str(faxed)]},
    }
    created = stack.call("POST", "/v1/mailings", north, json=body)
    assert created.status_code == 201, created.text
    mailing_id = created.json()["id"]
    base = f"/v1/mailings/{mailing_id}"
    sent = stack.call("POST", f"{base}/send", north, if_match=created.headers["ETag"])
    assert sent.status_code == 200, sent.text
    assert _step(stack, files_dir, "hand_over") == 3
    keys = {f"mailing:{mailing_id}:{p}" for p in (silent, recent, answered)}
    requests = {e.payload["idempotency_key"]: e.payload for e in stack.events(REQUESTS, keys, 3)}

    # nothing is overdue yet
    assert _step(stack, files_dir, "expire") == 0
    # the gateway reports on one; two were handed over 46 minutes ago (set-up: the clock)
    answer = requests[f"mailing:{mailing_id}:{answered}"]["data"]["result_url"]
    reported = httpx.post(
        stack.url + answer.removeprefix(PUBLIC_URL), json={"status": "sent"}, timeout=30
    )
    assert reported.status_code == 204
    stack.execute(
        "UPDATE mailing_recipients SET queued_at = now() - interval '46 minutes' "
        "WHERE mailing_id = :m AND person_id IN (:a, :b)",
        m=uuid.UUID(mailing_id),
        a=silent,
        b=answered,
    )
    assert _step(stack, files_dir, "expire", timeout_minutes=60) == 0  # within 60 minutes
    assert _step(stack, files_dir, "expire") == 1
    assert _step(stack, files_dir, "expire") == 0  # once
    states = {r["person_id"]: r for r in stack.call("GET", f"{base}/recipients", north).json()}
    assert (
        states[str(silent)]["status"],
        states[str(silent)]["reason"],
        states[str(silent)]["detail"],
    ) == ("failed", "no_callback", "no callback from the fax gateway within 45 minutes")
    assert states[str(recent)]["status"] == "queued"
    assert states[str(answered)]["status"] == "sent"
    assert stack.call("GET", base, north).json()["totals"]["failed:no_callback"] == 1

    # the gateway calls back at last: too late, the outcome stays
    late = requests[f"mailing:{mailing_id}:{silent}"]["data"]["result_url"]
    assert (
        httpx.post(
            stack.url + late.removeprefix(PUBLIC_URL), json={"status": "sent"}, timeout=30
        ).status_code
        == 204
    )
    states = {r["person_id"]: r for r in stack.call("GET", f"{base}/recipients", north).json()}
    assert states[str(silent)]["status"] == "failed"
    # each result published once: the timeout's failure too, the late callback's nothing
    stack.wait_until("SELECT count(*) FROM outbox WHERE topic = :t", 0, "relay", t=MAILING_RESULTS)
    found = stack.events(MAILING_RESULTS, {str(silent), str(answered)}, 3, 3000)
    assert sorted(
        (e.aggregate_id, e.payload["result"], e.payload["reason"]) for e in found
    ) == sorted(
        [
            (str(silent), "failed", "no callback from the fax gateway within 45 minutes"),
            (str(answered), "sent", "fax sent"),
        ]
    )
