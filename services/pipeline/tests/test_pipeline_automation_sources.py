"""Rules fired by other services' events, against the real stack: an interaction with the
deal logged (interactions' events) and the notifier's delivery result of a rule's e-mail."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from clientele_shared.events.catalog import DELIVERIES, INTERACTION_LOG
from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.events.schemas.interactions import InteractionLogged
from clientele_shared.events.schemas.notifier import DeliveryResult
from clientele_shared.testing.processes import wait_for
from pipeline_testkit import DEFAULT_STAGES, Stack
from pydantic import BaseModel

RULES = "/v1/automation/rules"
SRC = ["sources"]


@pytest.fixture(scope="module")
def pipeline(stack: Stack) -> dict[str, Any]:
    body = {"name": "Источники", "directions": SRC, "stages": DEFAULT_STAGES}
    response = stack.call("POST", "/v1/pipelines", stack.user(SRC), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _rule(stack: Stack, pipeline: dict[str, Any], **definition: Any) -> dict[str, Any]:
    body = {"pipeline_id": pipeline["id"], "name": "Правило", **definition}
    response = stack.call("POST", RULES, stack.user(SRC), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _deal(stack: Stack, pipeline: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body = {
        "pipeline_id": pipeline["id"],
        "organization_id": str(stack.organization(SRC)),
        "title": "Сделка",
        **fields,
    }
    response = stack.call("POST", "/v1/deals", stack.user(SRC), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _envelope(producer: str, event_type: str, payload: BaseModel, key: str) -> Envelope:
    return Envelope(
        type=event_type,
        schema_version=1,
        producer=producer,
        correlation_id=uuid.uuid4().hex,
        actor=Actor(subject=producer, kind="service"),
        aggregate_id=key,
        payload=payload.model_dump(mode="json"),
    )


def _runs(stack: Stack, deal: dict[str, Any], rule: dict[str, Any]) -> list[dict[str, Any]]:
    runs = stack.call("GET", f"/v1/deals/{deal['id']}/automation-runs", stack.user(SRC)).json()
    return [run for run in runs if run["rule_id"] == rule["id"]]


def _logged(deal_id: str, organization_id: str, kind: str, result: str | None) -> Envelope:
    interaction_id = uuid.uuid4()
    payload = InteractionLogged(
        interaction_id=interaction_id,
        organization_id=uuid.UUID(organization_id),
        version=1,
        kind=kind,  # type: ignore[arg-type]
        direction="out",
        status="done",
        occurred_at=datetime.now(UTC),
        subject="Звонок",
        result=result,
        deal_id=uuid.UUID(deal_id),
    )
    return _envelope(
        "interactions", "interactions.interaction.logged", payload, str(interaction_id)
    )


def test_an_interaction_logged_with_a_kind_and_result_fires(
    stack: Stack, pipeline: dict[str, Any]
) -> None:
    rule = _rule(
        stack,
        pipeline,
        trigger={"kind": "interaction_logged", "interaction_kind": "call", "result": "Согласен"},
        conditions={"all": [{"cel": "event.direction == 'out'"}]},
        actions=[{"kind": "add_tags", "tags": ["agreed"]}],
    )
    deal = _deal(stack, pipeline)
    org = deal["organization_id"]
    other = _logged(deal["id"], org, "call", "Перезвонить")
    meeting = _logged(deal["id"], org, "meeting", "Согласен")
    hit = _logged(deal["id"], org, "call", "Согласен")
    stack.send(INTERACTION_LOG, [other, meeting, hit, hit])  # the last one redelivered
    wait_for(lambda: bool(_runs(stack, deal, rule)), 30, "the interaction firing")
    current = stack.call("GET", f"/v1/deals/{deal['id']}", stack.user(SRC)).json()
    assert current["tags"] == ["agreed"]
    runs = _runs(stack, deal, rule)
    assert len(runs) == 1
    assert runs[0]["event_id"] == str(hit.event_id)
    assert runs[0]["trigger"]["interaction_kind"] == "call"
    assert runs[0]["trigger"]["result"] == "Согласен"
    assert current["version"] == 2


def test_a_delivery_result_of_a_rules_email_fires_on_its_deal(
    stack: Stack, pipeline: dict[str, Any]
) -> None:
    employee = stack.employee(SRC)
    deal = _deal(stack, pipeline, responsible_employee_id=str(employee))
    mail = _rule(
        stack,
        pipeline,
        trigger={"kind": "manual"},
        actions=[{"kind": "notify", "channel": "email", "subject": "Привет", "text": "Текст"}],
    )
    bounce = _rule(
        stack,
        pipeline,
        trigger={"kind": "delivery_result", "outcome": "bounced", "channel": "email"},
        actions=[{"kind": "add_tags", "tags": ["bad-address"]}],
    )
    run = stack.call(
        "POST", f"{RULES}/{mail['id']}/run", stack.user(SRC), json={"deal_id": deal["id"]}
    ).json()
    key = run["steps"][0]["detail"]["idempotency_key"]

    def result(event_type: str) -> Envelope:
        payload = DeliveryResult(
            delivery_id=uuid.uuid4(),
            request_id=uuid.uuid4(),
            requester="pipeline",
            idempotency_key=key,
            kind="automation",
            channel="email",  # type: ignore[arg-type]
            recipient="x@example.com",
            attempts=1,
            reason="550 no such user" if event_type.endswith("bounced") else None,
        )
        return _envelope("notifier", event_type, payload, key)

    foreign = result("notifier.delivery.bounced")
    foreign.payload["requester"] = "campaigns"
    stack.send(
        DELIVERIES,
        [foreign, result("notifier.delivery.succeeded"), result("notifier.delivery.bounced")],
    )
    wait_for(lambda: bool(_runs(stack, deal, bounce)), 30, "the bounce firing")
    runs = _runs(stack, deal, bounce)
    assert len(runs) == 1
    assert runs[0]["trigger"]["outcome"] == "bounced"
    assert runs[0]["trigger"]["reason"] == "550 no such user"
    assert runs[0]["chain"] == [mail["id"]]  # caused by the e-mail's firing
    current = stack.call("GET", f"/v1/deals/{deal['id']}", stack.user(SRC)).json()
    assert current["tags"] == ["bad-address"]


def _signed(secret: str, body: bytes, at: float | None = None) -> dict[str, str]:
    stamp = str(int(time.time() if at is None else at))
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        "X-Clientele-Timestamp": stamp,
        "X-Clientele-Signature": f"sha256={digest}",
        "Content-Type": "application/json",
    }


def test_an_inbound_webhook_with_the_rules_own_secret(
    stack: Stack, pipeline: dict[str, Any]
) -> None:
    user = stack.user(SRC)
    rule = _rule(
        stack,
        pipeline,
        trigger={"kind": "inbound_webhook"},
        conditions={"all": [{"cel": "event.data.state == 'paid'"}]},
        actions=[{"kind": "add_tags", "tags": ["paid"]}],
    )
    deal = _deal(stack, pipeline)
    hook = f"/v1/public/automation/hooks/{rule['id']}"
    body = json.dumps({"deal_id": deal["id"], "data": {"state": "paid"}}).encode()
    assert stack.call("POST", hook, _signed("guess", body), content=body).status_code == 401
    assert (
        stack.call(
            "POST", f"{RULES}/{rule['id']}/webhook-secret", stack.user(["elsewhere"])
        ).status_code
        == 404
    )
    issued = stack.call("POST", f"{RULES}/{rule['id']}/webhook-secret", user)
    assert issued.status_code == 200, issued.text
    secret = issued.json()["secret"]
    assert issued.json()["url"] == hook
    assert stack.call("POST", hook, _signed("guess", body), content=body).status_code == 401
    stale = _signed(secret, body, at=time.time() - 3600)
    assert stack.call("POST", hook, stale, content=body).status_code == 401
    unsigned = {"Content-Type": "application/json"}
    assert stack.call("POST", hook, unsigned, content=body).status_code == 401
    headers = _signed(secret, body)
    fired = stack.call("POST", hook, headers, content=body)
    assert fired.status_code == 200, fired.text
    assert fired.json()["status"] == "fired"
    assert fired.json()["trigger"] == {"kind": "inbound_webhook", "data": {"state": "paid"}}
    again = stack.call("POST", hook, headers, content=body)  # the same call replayed
    assert again.json()["id"] == fired.json()["id"]
    current = stack.call("GET", f"/v1/deals/{deal['id']}", user).json()
    assert current["tags"] == ["paid"]
    assert current["version"] == 2
    for bad in (b"{", json.dumps({"deal_id": str(uuid.uuid4())}).encode(), b"\x00" * 10):
        answer = stack.call("POST", hook, _signed(secret, bad), content=bad)
        assert answer.status_code == 422, (bad, answer.text)
    rotated = stack.call("POST", f"{RULES}/{rule['id']}/webhook-secret", user).json()["secret"]
    assert rotated != secret
    newer = json.dumps({"deal_id": deal["id"], "data": {"state": "draft"}}).encode()
    assert stack.call("POST", hook, _signed(secret, newer), content=newer).status_code == 401
    skipped = stack.call("POST", hook, _signed(rotated, newer), content=newer)
    assert skipped.json()["status"] == "conditions_not_met"
    audit = stack.call("GET", f"{RULES}/{rule['id']}/audit", user).json()
    assert [entry["action"] for entry in audit].count("webhook_secret_issued") == 2
    assert secret not in json.dumps(audit)
