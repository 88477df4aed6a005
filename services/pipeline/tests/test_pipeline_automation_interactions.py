"""The `schedule_interaction` action end to end, with the real interactions service: a rule
plans a contact there through a service token confined to the deal's directions and an
Idempotency-Key of the firing and the step, so a step run again creates nothing new; an
interactions service that is down is recorded on the run and the deal's timeline and retried
with back-off until it answers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_testkit.infra import Infrastructure
from clientele_testkit.processes import ServiceProcess, wait_for
from clientele_testkit.stack import VENV_BIN, migrate, running
from pipeline_testkit import DEFAULT_STAGES, Stack

pytestmark = pytest.mark.integration

RULES = "/v1/automation/rules"
PLAN = ["plan"]
MSK = ZoneInfo("Europe/Moscow")  # the company calendar's zone


@dataclass
class Interactions:
    """The interactions service as a process, which a test may stop and start again on the
    same port (where the pipeline calls it)."""

    env: dict[str, str]
    logs: Path
    process: ServiceProcess
    stack: Stack

    def stop(self) -> None:
        self.process.stop()

    def start(self) -> None:
        self.process = ServiceProcess(
            "interactions", self.env, self.logs, VENV_BIN, port=self.process.port
        )
        wait_for(self.process.ready, 180, "interactions to be ready again")


@pytest.fixture(scope="module")
def interactions(
    infra: Infrastructure,
    service_env: dict[str, str],
    issuer: TokenIssuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Interactions]:
    url = migrate("interactions", infra, service_env)
    logs = tmp_path_factory.mktemp("interactions")
    env = {**service_env, "DATABASE_URL": url, "ATTACHMENTS_DIR": str(logs / "attachments")}
    process = ServiceProcess("interactions", env, logs, VENV_BIN)
    stack = Stack(process.url, infra.kafka_bootstrap_servers, issuer, url)
    service = Interactions(env, logs, process, stack)
    try:
        wait_for(process.ready, 180, "interactions to be ready")
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def stack(
    infra: Infrastructure,
    service_env: dict[str, str],
    pipeline_migrated: str,
    issuer: TokenIssuer,
    tmp_path_factory: pytest.TempPathFactory,
    interactions: Interactions,
) -> Iterator[Stack]:
    """The pipeline calling the interactions service above."""
    env = {**service_env, "INTERACTIONS_URL": interactions.stack.url}
    logs = tmp_path_factory.mktemp("pipeline-interactions")
    with running("pipeline", infra, env, pipeline_migrated, issuer, logs) as stack:
        yield stack


@pytest.fixture(scope="module")
def pipeline(stack: Stack) -> dict[str, Any]:
    body = {"name": "Контакты", "directions": PLAN, "stages": DEFAULT_STAGES}
    response = stack.call("POST", "/v1/pipelines", stack.user(PLAN), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _known_to_both(interactions: Interactions, table: str, key: str, value: uuid.UUID) -> None:
    interactions.stack.wait_until(
        f"SELECT count(*) FROM {table} WHERE {key} = :id",
        1,
        f"{table} in interactions",
        id=value,
    )


@pytest.fixture(scope="module")
def parties(stack: Stack, interactions: Interactions) -> dict[str, uuid.UUID]:
    """An employee, a client and its contact, known to the pipeline and to interactions."""
    employee = stack.employee(PLAN)
    organization = stack.organization(PLAN)
    person = stack.person(PLAN)
    _known_to_both(interactions, "employees", "employee_id", employee)
    _known_to_both(interactions, "client_cards", "organization_id", organization)
    _known_to_both(interactions, "persons", "person_id", person)
    return {"employee": employee, "organization": organization, "person": person}


def _rule(stack: Stack, pipeline: dict[str, Any], **action: Any) -> dict[str, Any]:
    body = {
        "pipeline_id": pipeline["id"],
        "name": "Запланировать звонок",
        "trigger": {"kind": "manual"},
        "actions": [
            {
                "kind": "schedule_interaction",
                "channel": "call",
                "subject": "Позвонить: {{ deal.title }}",
                "due_in_working_days": 2,
                **action,
            }
        ],
    }
    response = stack.call("POST", RULES, stack.user(PLAN), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _deal(
    stack: Stack, interactions: Interactions, pipeline: dict[str, Any], parties: dict[str, Any]
) -> dict[str, Any]:
    body = {
        "pipeline_id": pipeline["id"],
        "organization_id": str(parties["organization"]),
        "title": "Поставка станков",
        "responsible_employee_id": str(parties["employee"]),
        "person_ids": [str(parties["person"])],
    }
    response = stack.call("POST", "/v1/deals", stack.user(PLAN), json=body)
    assert response.status_code == 201, response.text
    deal = response.json()
    _known_to_both(interactions, "client_deals", "deal_id", uuid.UUID(deal["id"]))
    return deal


def _run(stack: Stack, rule: dict[str, Any], deal: dict[str, Any]) -> dict[str, Any]:
    response = stack.call(
        "POST", f"{RULES}/{rule['id']}/run", stack.user(PLAN), json={"deal_id": deal["id"]}
    )
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["steps"][0]["status"] == "scheduled"  # never inside the firing's transaction
    return run


def _step(stack: Stack, deal: dict[str, Any], firing_id: str) -> dict[str, Any]:
    runs = stack.call("GET", f"/v1/deals/{deal['id']}/automation-runs", stack.user(PLAN)).json()
    return next(run for run in runs if run["id"] == firing_id)["steps"][0]


def _step_is(stack: Stack, deal: dict[str, Any], firing_id: str, status: str) -> bool:
    return _step(stack, deal, firing_id)["status"] == status


def _planned_of(interactions: Interactions, deal: dict[str, Any]) -> int:
    return int(
        interactions.stack.scalar(
            "SELECT count(*) FROM interactions WHERE deal_id = :deal", deal=uuid.UUID(deal["id"])
        )
    )


def test_a_rule_plans_a_contact_once_however_often_its_step_runs(
    stack: Stack,
    interactions: Interactions,
    pipeline: dict[str, Any],
    parties: dict[str, uuid.UUID],
) -> None:
    rule = _rule(stack, pipeline)
    deal = _deal(stack, interactions, pipeline, parties)
    started = datetime.now(UTC)
    run = _run(stack, rule, deal)
    wait_for(lambda: _step_is(stack, deal, run["id"], "done"), 30, "the planned contact")
    step = _step(stack, deal, run["id"])
    assert step["detail"]["key"] == f"automation:{run['id']}:0"
    interaction_id = step["detail"]["interaction_id"]
    found = interactions.stack.call(
        "GET", f"/v1/interactions/{interaction_id}", interactions.stack.user(PLAN)
    )
    assert found.status_code == 200, found.text
    planned = found.json()
    assert planned["status"] == "planned"
    assert planned["kind"] == "call"
    assert planned["subject"] == "Позвонить: Поставка станков"
    assert planned["deal_id"] == deal["id"]
    assert planned["organization_id"] == str(parties["organization"])
    assert planned["responsible_employee_id"] == str(parties["employee"])
    assert planned["person_ids"] == [str(parties["person"])]
    due_at = datetime.fromisoformat(planned["due_at"]).astimezone(MSK)
    assert due_at >= started + timedelta(days=2)  # two working days on, in working hours
    assert due_at.isoweekday() <= 5
    assert 9 <= due_at.hour < 18
    audit = stack.call("GET", f"/v1/deals/{deal['id']}/audit", stack.user(PLAN)).json()
    assert "automation_interaction_planned" in [entry["action"] for entry in audit]

    # the step runs again (a crash between the call and the commit): the same key, nothing new
    stack.execute(
        "UPDATE automation_schedule SET done = false, due_at = now() WHERE firing_id = :f",
        f=uuid.UUID(run["id"]),
    )
    wait_for(
        lambda: _step(stack, deal, run["id"])["detail"]["ran_at"] != step["detail"]["ran_at"],
        30,
        "the step run again",
    )
    again = _step(stack, deal, run["id"])
    assert again["status"] == "done", again["error"]
    assert again["detail"]["interaction_id"] == interaction_id
    assert _planned_of(interactions, deal) == 1


def test_an_unavailable_interactions_service_is_recorded_and_retried(
    stack: Stack,
    interactions: Interactions,
    pipeline: dict[str, Any],
    parties: dict[str, uuid.UUID],
) -> None:
    rule = _rule(stack, pipeline, channel="meeting", due_in_working_days=0)
    deal = _deal(stack, interactions, pipeline, parties)
    interactions.stop()
    try:
        run = _run(stack, rule, deal)
        wait_for(lambda: _step_is(stack, deal, run["id"], "retrying"), 60, "the failed attempt")
        # read while the service is still down: a restart slower than the back-off may see a
        # second attempt fail too, which this test does not depend on
        step = _step(stack, deal, run["id"])
    finally:
        interactions.start()
    assert "unreachable" in step["error"]
    assert step["detail"]["next_attempt"] == 2
    retry_at = datetime.fromisoformat(step["detail"]["retry_at"])
    assert retry_at >= datetime.fromisoformat(step["detail"]["ran_at"]) + timedelta(seconds=29)
    audit = stack.call("GET", f"/v1/deals/{deal['id']}/audit", stack.user(PLAN)).json()
    assert "automation_failed" in [entry["action"] for entry in audit]
    assert _planned_of(interactions, deal) == 0
    stack.execute(  # the back-off passes (whichever attempt is due next)
        "UPDATE automation_schedule SET due_at = now() WHERE firing_id = :f AND NOT done",
        f=uuid.UUID(run["id"]),
    )
    wait_for(lambda: _step_is(stack, deal, run["id"], "done"), 60, "the retried attempt")
    done = _step(stack, deal, run["id"])
    assert done["detail"]["request"] == step["detail"]["request"]  # the same request again
    assert _planned_of(interactions, deal) == 1
    kinds = interactions.stack.scalar(
        "SELECT string_agg(kind, ',') FROM interactions WHERE deal_id = :deal",
        deal=uuid.UUID(deal["id"]),
    )
    assert kinds == "meeting"


def test_the_action_is_validated_by_the_rule_schema(stack: Stack, pipeline: dict[str, Any]) -> None:
    schema = stack.call("GET", f"{RULES}/schema", stack.user(PLAN)).json()
    assert "ScheduleInteraction" in schema["$defs"]
    for bad in (
        {"channel": "fax"},
        {"due_in_working_days": -1},
        {"subject": "{{ deal.title "},
        {"subject": ""},
        {"when": "soon"},
    ):
        body = {
            "pipeline_id": pipeline["id"],
            "name": "Плохое",
            "trigger": {"kind": "manual"},
            "actions": [{"kind": "schedule_interaction", "subject": "Звонок", **bad}],
        }
        response = stack.call("POST", RULES, stack.user(PLAN), json=body)
        assert response.status_code == 422, (bad, response.text)


def test_a_confined_token_reaches_only_its_directions(
    interactions: Interactions, parties: dict[str, uuid.UUID], issuer: TokenIssuer
) -> None:
    body = {
        "organization_id": str(parties["organization"]),
        "kind": "call",
        "status": "planned",
        "due_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
        "responsible_employee_id": str(parties["employee"]),
        "subject": "Чужой звонок",
    }

    def confined(directions: list[str]) -> dict[str, str]:
        token = issuer.mint(
            "service:pipeline",
            roles=["service"],
            directions=directions,
            service="pipeline",
            confined=True,
        )
        return {"Authorization": f"Bearer {token}"}

    elsewhere = interactions.stack.call(
        "POST", "/v1/interactions", confined(["elsewhere"]), json=body
    )
    assert elsewhere.status_code == 404, elsewhere.text  # the client is not seen from there
    own = interactions.stack.call("POST", "/v1/interactions", confined(PLAN), json=body)
    assert own.status_code == 201, own.text
    # planning a contact is all it may do: a hand-over, even within its directions, is refused
    employee = str(parties["employee"])
    handover = {"from_employee_id": employee, "to_employee_id": employee}
    refused = interactions.stack.call("POST", "/v1/handovers", confined(PLAN), json=handover)
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
