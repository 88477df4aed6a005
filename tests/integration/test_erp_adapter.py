"""The example ERP adapter (docs/examples/erp-adapter) against the real directory and pipeline.

What an ERP team needs to trust: an organization created in the directory reaches the adapter's
copy; the invoice and payment it publishes reach the deal (a retried send is one document) and
the client's summary in interactions; an
invalid document ends in the dead-letter topic with a readable reason; an adapter killed and
restarted resumes from its committed offsets without losing or doubling anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.catalog import ERP_DOCUMENTS
from clientele_testkit.infra import Infrastructure
from clientele_testkit.processes import wait_for
from clientele_testkit.stack import Stack, running

pytestmark = pytest.mark.integration
ADAPTER = Path(__file__).resolve().parents[2] / "docs" / "examples" / "erp-adapter" / "adapter.py"
STAGES = [
    {"name": "Новая", "kind": "open", "probability": 10},
    {"name": "Выиграна", "kind": "won", "probability": 100},
    {"name": "Проиграна", "kind": "lost", "probability": 0},
]


@pytest.fixture(scope="module")
def stacks(
    infra: Infrastructure,
    service_env: dict[str, str],
    migrated: None,
    issuer: TokenIssuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Stack, Stack, Stack]]:
    logs = tmp_path_factory.mktemp("erp")

    def start(service: str) -> contextlib.AbstractContextManager[Stack]:
        url = infra.test_database_url(service)
        return running(service, infra, service_env, url, issuer, logs)

    with (
        start("directory") as directory,
        start("pipeline") as pipeline,
        start("interactions") as interactions,
    ):
        yield directory, pipeline, interactions


class Adapter:
    """The adapter's `follow` as a process with its own consumer group and SQLite file."""

    def __init__(self, bootstrap: str, tmp: Path) -> None:
        self.bootstrap = bootstrap
        self.db = tmp / "erp.sqlite3"
        self.group = f"erp.adapter-test-{uuid.uuid4().hex[:8]}"
        self.log = tmp / "adapter.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, str(ADAPTER), "follow", "--bootstrap", self.bootstrap]
        command += ["--db", str(self.db), "--group", self.group]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def rows(self, ids: list[str]) -> dict[str, tuple[str, int]]:
        """Legal name and version of these clients in the adapter's copy."""
        if not self.db.exists():
            return {}
        with sqlite3.connect(self.db) as db:
            marks = ",".join("?" * len(ids))
            found = db.execute(
                f"SELECT id, legal_name, version FROM clients WHERE id IN ({marks})", ids
            ).fetchall()
        return {row[0]: (row[1], row[2]) for row in found}

    def publish(self, tmp: Path, event_type: str, document: dict[str, Any]) -> str:
        path = tmp / f"{uuid.uuid4().hex}.json"
        path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
        command = [sys.executable, str(ADAPTER), "publish", "--bootstrap", self.bootstrap]
        command += ["--type", event_type, "--document", str(path)]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        return done.stdout.strip()


@pytest.fixture
def adapter(infra: Infrastructure, tmp_path: Path) -> Iterator[Adapter]:
    running_adapter = Adapter(infra.kafka_bootstrap_servers, tmp_path)
    yield running_adapter
    running_adapter.stop()


def _dead_letter_reason(bootstrap: str, key: str) -> str:
    async def read() -> str:
        consumer = AIOKafkaConsumer(
            f"{ERP_DOCUMENTS}.dlt",
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            for _ in range(60):
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    for record in records:
                        if (record.key or b"").decode() == key:
                            reason: bytes = dict(record.headers or ())["dlt.error"]
                            return reason.decode()
        finally:
            await consumer.stop()
        raise AssertionError(f"{key} was not dead-lettered")

    return asyncio.run(read())


@pytest.mark.timeout(900)  # three services, the adapter twice and a dozen processes on 2 cores
def test_the_adapter_follows_the_directory_and_its_documents_reach_the_deal(
    stacks: tuple[Stack, Stack, Stack], adapter: Adapter, tmp_path: Path
) -> None:
    directory, pipeline, interactions = stacks
    north = [f"erp-{uuid.uuid4().hex[:6]}"]
    me = directory.user(north)
    adapter.start()

    def create(name: str) -> dict[str, Any]:
        body = {"legal_name": name, "inn": None, "directions": north}
        response = directory.call("POST", "/v1/organizations", me, json=body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    client = create("ООО «Уральская сталь»")
    wait_for(lambda: client["id"] in adapter.rows([client["id"]]), 60, "the client at the ERP")

    # a deal for it in the pipeline (which learnt of the client from the same events)
    pipeline.wait_until(
        "SELECT count(*) FROM organizations WHERE organization_id = :id",
        1,
        "the client in the pipeline",
        id=uuid.UUID(client["id"]),
    )
    body = {"name": "ERP", "directions": north, "stages": STAGES}
    created = pipeline.call("POST", "/v1/pipelines", pipeline.user(north), json=body)
    assert created.status_code == 201, created.text
    draft = {"pipeline_id": created.json()["id"], "organization_id": client["id"], "title": "Сталь"}
    deal = pipeline.call("POST", "/v1/deals", pipeline.user(north), json=draft)
    assert deal.status_code == 201, deal.text
    deal_id = deal.json()["id"]

    invoice = {
        "document_id": f"СЧ-{uuid.uuid4().hex[:8]}",
        "deal_id": deal_id,
        "number": "СЧ-17",
        "date": "2026-12-01",
        "amount": "125000.50",
        "currency": "RUB",
    }
    payment = {
        **invoice,
        "document_id": f"ПП-{uuid.uuid4().hex[:8]}",
        "number": "ПП-9",
        "invoice_id": invoice["document_id"],
    }
    first = adapter.publish(tmp_path, "erp.invoice.issued", invoice)
    assert adapter.publish(tmp_path, "erp.invoice.issued", invoice) == first, "a retry, same id"
    adapter.publish(tmp_path, "erp.payment.received", payment)

    def documents() -> list[dict[str, Any]]:
        response = pipeline.call("GET", f"/v1/deals/{deal_id}/documents", pipeline.user(north))
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()
        return found

    wait_for(lambda: len(documents()) >= 2, 60, "the invoice and the payment on the deal")
    kinds = sorted((doc["number"], doc["amount"]) for doc in documents())
    assert kinds == [("ПП-9", "125000.50"), ("СЧ-17", "125000.50")]

    def on_summary() -> list[tuple[str, str, str]]:
        url = f"/v1/clients/{client['id']}/summary"
        response = interactions.call("GET", url, interactions.user(north))
        assert response.status_code == 200, response.text
        lines = response.json()["erp_documents"]
        return sorted((line["kind"], line["number"], line["amount"]) for line in lines)

    wait_for(lambda: len(on_summary()) >= 2, 60, "the documents on the client's summary")
    assert on_summary() == [("invoice", "СЧ-17", "125000.50"), ("payment", "ПП-9", "125000.50")]

    broken = {**invoice, "document_id": f"BAD-{uuid.uuid4().hex[:8]}", "lines": []}
    broken["lines"] = [{"name": "Сталь", "quantity": "1", "price": "1.00", "amount": "1.00"}]
    adapter.publish(tmp_path, "erp.invoice.issued", broken)
    reason = _dead_letter_reason(adapter.bootstrap, broken["document_id"])
    assert "add up" in reason, reason

    # killed mid-stream, the client base changes, restarted: all there, each once, the latest
    adapter.kill()
    more = [create(f"ООО «Филиал {n}»") for n in range(3)]
    patch = directory.call(
        "PATCH",
        f"/v1/organizations/{client['id']}",
        me,
        if_match=client["version"],
        json={"legal_name": "АО «Уральская сталь»"},
    )
    assert patch.status_code == 200, patch.text
    adapter.start()
    ids = [client["id"], *(org["id"] for org in more)]
    wait_for(
        lambda: (
            adapter.rows(ids).get(client["id"], ("", 0))[0] == "АО «Уральская сталь»"
            and len(adapter.rows(ids)) == 4
        ),
        60,
        "the adapter to catch up after its restart",
    )
    rows = adapter.rows(ids)
    assert rows[client["id"]] == ("АО «Уральская сталь»", patch.json()["version"])
    with sqlite3.connect(adapter.db) as db:
        (count,) = db.execute(
            "SELECT count(*) FROM clients WHERE id = ?", (client["id"],)
        ).fetchone()
    assert count == 1
    assert httpx.get(directory.url + "/health/live", timeout=5).status_code == 200
