"""Rules fired by other services' events, against the real stack: an interaction with the
deal logged (interactions' events) and the notifier's delivery result of a rule's e-mail."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from clientele_shared.events.catalog import (
    DEALS,
    DELIVERIES,
    ERP_DOCUMENTS,
    INTERACTION_LOG,
    PIPELINE,
    TASKS,
)
from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.events.schemas.interactions import InteractionLogged
from clientele_shared.events.schemas.notifier import DeliveryResult
from clientele_shared.events.schemas.pipeline import DealPaymentReceived
from clientele_shared.events.schemas.tasks import TaskCompleted, TaskOverdue
from clientele_shared.events.topics import notification_requests
from clientele_testkit.processes import wait_for
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


def _delivery(event_type: str, key: str, reason: str | None = None) -> Envelope:
    payload = DeliveryResult(
        delivery_id=uuid.uuid4(),
        request_id=uuid.uuid4(),
        requester="pipeline",
        idempotency_key=key,
        kind="automation",
        channel="webhook",  # type: ignore[arg-type]
        recipient="crm-hook",
        attempts=3,
        reason=reason,
    )
    return _envelope("notifier", event_type, payload, key)


def test_a_failed_webhook_delivery_is_retried_with_back_off(
    stack: Stack, pipeline: dict[str, Any]
) -> None:
    user = stack.user(SRC)
    deal = _deal(stack, pipeline)
    rule = _rule(
        stack,
        pipeline,
        trigger={"kind": "manual"},
        actions=[{"kind": "webhook", "endpoint": "crm-hook"}],
    )
    run = stack.call("POST", f"{RULES}/{rule['id']}/run", user, json={"deal_id": deal["id"]})
    key = run.json()["steps"][0]["detail"]["idempotency_key"]

    def step() -> dict[str, Any]:
        return _runs(stack, deal, rule)[0]["steps"][0]  # type: ignore[no-any-return]

    stack.send(DELIVERIES, [_delivery("notifier.delivery.failed", key, "502 from the endpoint")])
    wait_for(lambda: step()["status"] == "retrying", 30, "the retry scheduled")
    retrying = step()
    assert retrying["error"] == "delivery failed (attempt 1): 502 from the endpoint"
    retry_at = datetime.fromisoformat(retrying["detail"]["retry_at"])
    assert retry_at > datetime.fromisoformat(run.json()["started_at"]) + timedelta(seconds=29)
    audit = stack.call("GET", f"/v1/deals/{deal['id']}/audit", user).json()
    failed = [entry for entry in audit if entry["action"] == "automation_failed"]
    assert "retry at" in failed[-1]["note"]
    stack.execute(  # the back-off passes
        "UPDATE automation_schedule SET due_at = now() WHERE firing_id = :id",
        id=run.json()["id"],
    )
    wait_for(lambda: step()["status"] == "done", 30, "the second attempt")
    assert step()["detail"]["idempotency_key"] == f"{key}:2"
    assert step()["error"] is None
    requests = stack.events(notification_requests(PIPELINE), {deal["id"]}, 2)
    assert [e.payload["idempotency_key"] for e in requests if e.payload["kind"] == "automation"][
        -2:
    ] == [key, f"{key}:2"]
    # a late result of the first attempt changes nothing; the last attempt's failure is final
    stack.send(DELIVERIES, [_delivery("notifier.delivery.failed", key, "late")])
    stack.execute(
        "UPDATE automation_steps SET detail = detail || '{\"attempt\": 5}' WHERE firing_id = :id",
        id=run.json()["id"],
    )
    stack.send(DELIVERIES, [_delivery("notifier.delivery.failed", f"{key}:5", "410 gone")])
    wait_for(lambda: step()["status"] == "failed", 30, "the step failed for good")
    assert step()["error"] == "delivery failed (attempt 5): 410 gone"


def test_a_disabled_rule_is_tested_against_the_last_events_without_side_effects(
    stack: Stack, pipeline: dict[str, Any]
) -> None:
    user = stack.user(SRC)
    backtested = stack.call(
        "POST",
        "/v1/pipelines",
        user,
        json={"name": "Проба", "directions": SRC, "stages": DEFAULT_STAGES},
    ).json()
    big = _deal(stack, backtested, amount="5000.00", currency="RUB", custom_fields={"grade": "C"})
    small = _deal(stack, backtested, amount="100.00", currency="RUB", custom_fields={"grade": "C"})
    for deal in (big, small):
        changed = stack.call(
            "PATCH",
            f"/v1/deals/{deal['id']}",
            user,
            if_match=1,
            json={"custom_fields": {"grade": "A"}},
        )
        assert changed.status_code == 200, changed.text
    stack.wait_until(
        "SELECT count(*) FROM automation_recent_events WHERE pipeline_id = :id",
        4,
        "the four events kept",
        id=backtested["id"],
    )
    rule = _rule(
        stack,
        backtested,
        enabled=False,
        trigger={"kind": "field_changed", "field": "custom_fields.grade", "match": "to", "to": "A"},
        conditions={"all": [{"cel": "deal.amount >= 1000.0", "label": "крупная"}]},
        actions=[{"kind": "add_tags", "tags": ["a-grade"]}],
    )
    path = f"{RULES}/{rule['id']}/backtest"
    assert stack.call("POST", path, stack.user(["elsewhere"]), json={"last": 10}).status_code == 404
    assert stack.call("POST", path, user, json={"last": 0}).status_code == 422
    answer = stack.call("POST", path, user, json={"last": 10})
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert found["events"] == 4
    assert found["would_fire"] == 1
    by_deal = {(r["deal_id"], r["event_type"]): r for r in found["results"]}
    hit = by_deal[(big["id"], "pipeline.deal.changed")]
    assert hit["would_fire"] is True
    assert hit["trigger"]["new"] == "A"
    miss = by_deal[(small["id"], "pipeline.deal.changed")]
    assert miss["triggered"] is True
    assert miss["would_fire"] is False
    assert miss["conditions"][0]["result"] is False
    assert by_deal[(big["id"], "pipeline.deal.created")]["triggered"] is False
    assert len(stack.call("POST", path, user, json={"last": 1}).json()["results"]) == 1
    # nothing happened: no firing, no change
    assert _runs(stack, big, rule) == []
    assert stack.call("GET", f"/v1/deals/{big['id']}", user).json()["version"] == 2


def test_create_task_actions_and_triggers_from_tasks_and_payments(
    stack: Stack, pipeline: dict[str, Any]
) -> None:
    user = stack.user(SRC)
    first = stack.employee(SRC)
    stack.employee(SRC)  # a second one to take turns with
    bad = {
        "pipeline_id": pipeline["id"],
        "name": "Плохой шаблон",
        "trigger": {"kind": "manual"},
        "actions": [{"kind": "create_task", "title": "Позвонить {{ deal.title "}],
    }
    assert stack.call("POST", RULES, user, json=bad).status_code == 422
    turns = _rule(
        stack,
        pipeline,
        trigger={"kind": "manual"},
        actions=[
            {
                "kind": "create_task",
                "title": "Позвонить: {{ deal.title }}",
                "assignee": {"rule": "round_robin"},
                "deadline": {"amount": 2, "unit": "working_hours"},
                "priority": "high",
            }
        ],
    )
    deals = [_deal(stack, pipeline, responsible_employee_id=str(first)) for _ in range(2)]
    assignees = []
    for deal in deals:
        run = stack.call("POST", f"{RULES}/{turns['id']}/run", user, json={"deal_id": deal["id"]})
        step = run.json()["steps"][0]
        assert step["status"] == "done", step
        row = stack.scalar(
            "SELECT json_build_array(title, assignee_employee_id, priority) FROM tasks"
            " WHERE deal_id = :id",
            id=deal["id"],
        )
        assert row[0] == "Позвонить: Сделка"
        assert row[2] == "high"
        assignees.append(row[1])
    assert assignees[0] != assignees[1]  # in turn

    deal = deals[0]
    done = _rule(
        stack,
        pipeline,
        trigger={"kind": "task_completed", "result": "Договорились"},
        actions=[{"kind": "add_tags", "tags": ["agreed-by-task"]}],
    )
    late = _rule(
        stack,
        pipeline,
        trigger={"kind": "task_overdue"},
        actions=[{"kind": "add_tags", "tags": ["task-late"]}],
    )
    paid = _rule(
        stack,
        pipeline,
        trigger={"kind": "payment_received", "currency": "RUB"},
        conditions={"all": [{"cel": "double(event.amount) >= 1000.0"}]},
        actions=[{"kind": "add_tags", "tags": ["paid"]}],
    )
    task_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    common = {"task_id": task_id, "version": 2, "deal_id": deal["id"]}
    completed = TaskCompleted.model_validate(
        {
            **common,
            "assignee_employee_id": str(first),
            "result": "Договорились",
            "completed_at": now,
            "overdue": False,
        }
    )
    overdue = TaskOverdue.model_validate(
        {
            **common,
            "assignee_employee_id": str(first),
            "title": "Т",
            "deadline": now,
            "detected_at": now,
        }
    )
    payment = DealPaymentReceived.model_validate(
        {
            "deal_id": deal["id"],
            "organization_id": deal["organization_id"],
            "pipeline_id": pipeline["id"],
            "document_id": "pay-1",
            "number": "17",
            "date": str(now.date()),
            "amount": "1500.00",
            "currency": "RUB",
        }
    )
    stack.send(
        TASKS,
        [
            _envelope("pipeline", "pipeline.task.completed", completed, task_id),
            _envelope("pipeline", "pipeline.task.overdue", overdue, task_id),
        ],
    )
    stack.send(
        DEALS, [_envelope("pipeline", "pipeline.deal.payment_received", payment, deal["id"])]
    )
    for rule in (done, late, paid):
        wait_for(lambda rule=rule: bool(_runs(stack, deal, rule)), 60, "the firing")  # type: ignore[misc]
        assert _runs(stack, deal, rule)[0]["status"] == "fired"
    tags = set(stack.call("GET", f"/v1/deals/{deal['id']}", user).json()["tags"])
    assert {"agreed-by-task", "task-late", "paid"} <= tags


def test_an_erp_invoice_on_the_deal_fires(stack: Stack, pipeline: dict[str, Any]) -> None:
    """The ERP's invoice (over `clientele.erp.documents`) attached to the deal fires an
    `invoice_received` rule of its currency, once across a redelivery; another currency not."""
    rubles = _rule(
        stack,
        pipeline,
        trigger={"kind": "invoice_received", "currency": "RUB"},
        conditions={"all": [{"cel": "event.due_date == '2027-01-15'"}]},
        actions=[{"kind": "add_tags", "tags": ["invoiced"]}],
    )
    dollars = _rule(
        stack,
        pipeline,
        trigger={"kind": "invoice_received", "currency": "USD"},
        actions=[{"kind": "add_tags", "tags": ["dollars"]}],
    )
    deal = _deal(stack, pipeline)
    document_id = f"INV-{uuid.uuid4()}"
    invoice = Envelope(
        type="erp.invoice.issued",
        schema_version=1,
        producer="erp",
        correlation_id=uuid.uuid4().hex,
        actor=Actor(subject="erp", kind="service"),
        aggregate_id=document_id,
        payload={
            "document_id": document_id,
            "deal_id": deal["id"],
            "number": "СЧ-1",
            "date": "2027-01-05",
            "due_date": "2027-01-15",
            "amount": "1200.50",
            "currency": "RUB",
        },
    )
    stack.send(ERP_DOCUMENTS, [invoice, invoice])
    wait_for(lambda: bool(_runs(stack, deal, rubles)), 60, "the invoice firing")
    [run] = _runs(stack, deal, rubles)
    assert run["status"] == "fired"
    assert run["trigger"]["amount"] == "1200.50"
    assert run["trigger"]["document_id"] == document_id
    current = stack.call("GET", f"/v1/deals/{deal['id']}", stack.user(SRC)).json()
    assert current["tags"] == ["invoiced"]
    assert _runs(stack, deal, dollars) == []


def test_create_a_deal_in_another_pipeline(stack: Stack, pipeline: dict[str, Any]) -> None:
    """`create_deal` adds one deal for the client in another pipeline in the firing's unit of
    work (its id derived from the firing: a run is one deal), copying the deal's fields."""
    user = stack.user(SRC)
    body = {"name": "Повторные продажи", "directions": SRC, "stages": DEFAULT_STAGES}
    repeat = stack.call("POST", "/v1/pipelines", user, json=body).json()
    seller = stack.employee(SRC)
    rule = _rule(
        stack,
        pipeline,
        trigger={"kind": "manual"},
        actions=[
            {
                "kind": "create_deal",
                "pipeline_id": repeat["id"],
                "title": "Повтор: {{ deal.title }}",
                "tags": ["repeat"],
            }
        ],
    )
    deal = _deal(
        stack, pipeline, amount="700.00", currency="RUB", responsible_employee_id=str(seller)
    )
    run = stack.call("POST", f"{RULES}/{rule['id']}/run", user, json={"deal_id": deal["id"]})
    assert run.status_code == 200, run.text
    [step] = run.json()["steps"]
    assert step["status"] == "done", step
    created = stack.call("GET", f"/v1/deals/{step['detail']['deal_id']}", user).json()
    assert created["pipeline_id"] == repeat["id"]
    assert created["stage_id"] == repeat["stages"][0]["id"]
    assert (created["title"], created["amount"], created["currency"]) == (
        "Повтор: Сделка",
        "700.00",
        "RUB",
    )
    assert created["responsible_employee_id"] == str(seller)
    assert created["organization_id"] == deal["organization_id"]
    assert created["tags"] == ["repeat"]
    [event] = stack.events(DEALS, {created["id"]}, 1)
    assert event.type == "pipeline.deal.created"
    assert event.causation_id == run.json()["id"]
    count = "SELECT count(*) FROM deals WHERE pipeline_id = :p"
    assert stack.scalar(count, p=repeat["id"]) == 1
    # a pipeline the rule's author cannot see: the step fails and nothing is written
    hidden = stack.call(
        "POST",
        "/v1/pipelines",
        stack.user(["elsewhere"]),
        json={"name": "Чужая", "directions": ["elsewhere"], "stages": DEFAULT_STAGES},
    ).json()
    foreign = _rule(
        stack,
        pipeline,
        trigger={"kind": "manual"},
        actions=[{"kind": "create_deal", "pipeline_id": hidden["id"], "title": "x"}],
    )
    run = stack.call("POST", f"{RULES}/{foreign['id']}/run", user, json={"deal_id": deal["id"]})
    [step] = run.json()["steps"]
    assert step["status"] == "failed", step
    assert stack.scalar(count, p=hidden["id"]) == 0


def test_email_templates_fail_on_preview_never_mid_run(
    stack: Stack, pipeline: dict[str, Any]
) -> None:
    user = stack.user(SRC)
    employee = stack.employee(SRC)
    for subject, text in (("{{ deal.title", "x"), ("x", "{{ client.name }}")):
        bad = {
            "pipeline_id": pipeline["id"],
            "name": "Плохое письмо",
            "trigger": {"kind": "manual"},
            "actions": [{"kind": "notify", "channel": "email", "subject": subject, "text": text}],
        }
        assert stack.call("POST", RULES, user, json=bad).status_code == 422
    rule = _rule(
        stack,
        pipeline,
        trigger={"kind": "manual"},
        actions=[
            {
                "kind": "notify",
                "channel": "email",
                "subject": "Сделка «{{ deal.title }}»",
                "text": "{{ employee.name }}, позвоните: {{ deal.custom_fields.contact_day }}",
            }
        ],
    )
    lacking = _deal(stack, pipeline, title="Без дня", responsible_employee_id=str(employee))
    ready = _deal(
        stack,
        pipeline,
        title="С днём",
        responsible_employee_id=str(employee),
        custom_fields={"contact_day": "вторник"},
    )
    preview = f"{RULES}/{rule['id']}/preview"
    refused = stack.call("POST", preview, user, json={"deal_id": lacking["id"]})
    assert refused.status_code == 422, refused.text
    assert "deal.custom_fields.contact_day" in refused.text
    shown = stack.call("POST", preview, user, json={"deal_id": ready["id"]})
    assert shown.status_code == 200, shown.text
    assert shown.json() == {
        "subject": "Сделка «С днём»",
        "text": "Пётр Петров, позвоните: вторник",
    }
    skipped = stack.call("POST", f"{RULES}/{rule['id']}/run", user, json={"deal_id": lacking["id"]})
    step = skipped.json()["steps"][0]
    assert step["status"] == "skipped"
    assert step["detail"]["skipped"] == "missing fields: deal.custom_fields.contact_day"
    sent = stack.call("POST", f"{RULES}/{rule['id']}/run", user, json={"deal_id": ready["id"]})
    assert sent.json()["steps"][0]["status"] == "done"
    requests = stack.events(notification_requests(PIPELINE), {ready["id"]}, 1)
    assert requests[-1].payload["subject"] == "Сделка «С днём»"
    assert requests[-1].payload["text"] == "Пётр Петров, позвоните: вторник"
    assert stack.events(notification_requests(PIPELINE), {lacking["id"]}, 1, 3000) == []
