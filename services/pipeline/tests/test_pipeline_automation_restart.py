"""A delayed automation action survives a restart of the pipeline: due while no process runs,
it is run once by the next process."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
from clientele_shared.auth.tokens import TokenIssuer
from clientele_testkit.infra import Infrastructure
from clientele_testkit.processes import ServiceProcess, wait_for
from pipeline_testkit import DEFAULT_STAGES, Stack

VENV_BIN = Path(sys.executable).parent
NORTH = ["north"]


def test_a_delayed_action_due_while_down_runs_after_the_restart(
    infra: Infrastructure,
    service_env: dict[str, str],
    pipeline_migrated: str,
    issuer: TokenIssuer,
    tmp_path: Path,
) -> None:
    env = {**service_env, "DATABASE_URL": pipeline_migrated}
    first = ServiceProcess("pipeline", env, tmp_path, VENV_BIN)
    try:
        wait_for(first.ready, 60, "the pipeline")
        stack = Stack(first.url, infra.kafka_bootstrap_servers, issuer, pipeline_migrated)
        north = stack.user(NORTH)
        body = {"name": "Перезапуск", "directions": NORTH, "stages": DEFAULT_STAGES}
        pipeline = stack.call("POST", "/v1/pipelines", north, json=body).json()
        rule = {
            "pipeline_id": pipeline["id"],
            "name": "Позже",
            "trigger": {"kind": "manual"},
            "actions": [{"kind": "add_tags", "tags": ["later"], "delay_seconds": 3}],
        }
        rule_id = stack.call("POST", "/v1/automation/rules", north, json=rule).json()["id"]
        client = stack.organization(NORTH)
        deal_body = {"pipeline_id": pipeline["id"], "organization_id": str(client), "title": "С"}
        deal = stack.call("POST", "/v1/deals", north, json=deal_body).json()
        run = stack.call(
            "POST", f"/v1/automation/rules/{rule_id}/run", north, json={"deal_id": deal["id"]}
        )
        assert run.json()["steps"][0]["status"] == "scheduled"
    finally:
        first.stop()
    time.sleep(4)  # due while no pipeline process runs
    pending = (
        "SELECT count(*) FROM automation_schedule s JOIN automation_firings f "
        "ON f.id = s.firing_id WHERE NOT s.done AND f.deal_id = :id"
    )
    assert stack.scalar(pending, id=deal["id"]) == 1
    second = ServiceProcess("pipeline", env, tmp_path, VENV_BIN)
    try:
        wait_for(second.ready, 60, "the pipeline again")

        def tagged() -> bool:
            found = httpx.get(f"{second.url}/v1/deals/{deal['id']}", headers=north, timeout=10)
            return bool(found.json()["tags"] == ["later"])

        wait_for(tagged, 10, "the delayed action after the restart")
        found = httpx.get(f"{second.url}/v1/deals/{deal['id']}", headers=north, timeout=10)
        assert found.json()["version"] == 2
        runs = httpx.get(
            f"{second.url}/v1/automation/rules/{rule_id}/runs", headers=north, timeout=10
        ).json()
        assert runs[0]["steps"][0]["status"] == "done"
    finally:
        second.stop()
