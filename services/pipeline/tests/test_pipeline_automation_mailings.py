"""The `mailing_result` trigger against the real stack: campaigns' result of a mailing to a
person fires the rules of the open deals of the person's organization and of the deals the
person is a contact of, within the mailing's directions, once per deal across a redelivery,
filtered by result, channel and marketing event, with CEL conditions on the result."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from clientele_pipeline.automation.mailing_trigger import MailingResult
from clientele_shared.events.catalog import MAILING_RESULTS, REGISTRY
from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.events.schemas.mailings import MAILING_RESULT_RECORDED, MailingResultRecorded
from pipeline_testkit import DEFAULT_STAGES, Stack

RULES = "/v1/automation/rules"
MAIL = ["mailres"]
OTHER = ["mailres-south"]


def _pipeline(stack: Stack, directions: list[str]) -> dict[str, Any]:
    body = {"name": "Рассылки", "directions": directions, "stages": DEFAULT_STAGES}
    response = stack.call("POST", "/v1/pipelines", stack.user(directions), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _rule(stack: Stack, pipeline: dict[str, Any], **definition: Any) -> dict[str, Any]:
    body = {"pipeline_id": pipeline["id"], "name": "Итог рассылки", **definition}
    response = stack.call("POST", RULES, stack.user(pipeline["directions"]), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _deal(stack: Stack, pipeline: dict[str, Any], client: uuid.UUID, **fields: Any) -> str:
    body = {"pipeline_id": pipeline["id"], "organization_id": str(client), "title": "Сделка"}
    user = stack.user(pipeline["directions"])
    response = stack.call("POST", "/v1/deals", user, json={**body, **fields})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _result(
    person: uuid.UUID,
    organization: uuid.UUID | None,
    result: str,
    *,
    campaign: uuid.UUID | None = None,
    channel: str = "email",
    directions: list[str] = MAIL,
) -> Envelope:
    payload = MailingResultRecorded(
        mailing_id=uuid.uuid4(),
        campaign_id=campaign,
        person_id=person,
        organization_id=organization,
        channel=channel,  # type: ignore[arg-type]
        result=result,  # type: ignore[arg-type]
        reason="550 no such user" if result == "bounced" else None,
        recorded_at=datetime.now(UTC),
    )
    return Envelope(
        type=MAILING_RESULT_RECORDED,
        schema_version=REGISTRY.spec_for(MAILING_RESULT_RECORDED, payload).version,
        producer="campaigns",
        correlation_id=uuid.uuid4().hex,
        actor=Actor(subject="notifier", kind="service"),
        aggregate_id=str(person),
        directions=directions,
        payload=payload.model_dump(mode="json"),
    )


def _runs(stack: Stack, deal_id: str, directions: list[str]) -> list[dict[str, Any]]:
    response = stack.call("GET", f"/v1/deals/{deal_id}/automation-runs", stack.user(directions))
    assert response.status_code == 200, response.text
    return list(response.json())


def _applied(stack: Stack, *envelopes: Envelope) -> None:
    for envelope in envelopes:
        stack.wait_until(
            "SELECT count(*) FROM inbox WHERE event_id = :e",
            1,
            "the result applied",
            e=envelope.event_id,
        )


@pytest.fixture(scope="module")
def pipelines(stack: Stack) -> tuple[dict[str, Any], dict[str, Any]]:
    return _pipeline(stack, MAIL), _pipeline(stack, OTHER)


def test_a_mailing_result_fires_on_the_deals_of_its_client_and_contact(
    stack: Stack, pipelines: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    pipeline, south = pipelines
    campaign = uuid.uuid4()
    bounced = _rule(
        stack,
        pipeline,
        trigger={"kind": "mailing_result", "result": "bounced", "campaign_id": str(campaign)},
        conditions={"all": [{"cel": "event.channel == 'email'"}]},
        actions=[{"kind": "add_tags", "tags": ["адрес-отклонён"]}],
    )
    sent = _rule(
        stack,
        pipeline,
        trigger={"kind": "mailing_result", "result": "sent"},
        actions=[{"kind": "add_tags", "tags": ["получил"]}],
    )
    client = stack.organization([*MAIL, *OTHER])
    elsewhere = stack.organization(MAIL)
    person = stack.person(MAIL)
    first, second = _deal(stack, pipeline, client), _deal(stack, pipeline, client)
    as_contact = _deal(stack, pipeline, elsewhere, person_ids=[str(person)])
    unrelated = _deal(stack, pipeline, elsewhere)
    other_direction = _deal(stack, south, client)
    _rule(
        stack,
        south,
        trigger={"kind": "mailing_result"},
        actions=[{"kind": "add_tags", "tags": ["чужое"]}],
    )

    hit = _result(person, client, "bounced", campaign=campaign)
    other_campaign = _result(person, client, "bounced", campaign=uuid.uuid4())
    stack.send(MAILING_RESULTS, [other_campaign, hit, hit])  # the last one redelivered
    _applied(stack, other_campaign, hit)

    for deal_id in (first, second, as_contact):
        runs = _runs(stack, deal_id, MAIL)
        assert [(r["rule_id"], r["status"]) for r in runs] == [(bounced["id"], "fired")], runs
        trigger = runs[0]["trigger"]
        assert (trigger["kind"], trigger["result"], trigger["reason"]) == (
            "mailing_result",
            "bounced",
            "550 no such user",
        )
        assert trigger["campaign_id"] == str(campaign)
        assert trigger["person_id"] == str(person)
        assert trigger["source_event_id"] == str(hit.event_id)
        deal = stack.call("GET", f"/v1/deals/{deal_id}", stack.user(MAIL)).json()
        assert deal["tags"] == ["адрес-отклонён"]
    assert _runs(stack, unrelated, MAIL) == []
    assert _runs(stack, other_direction, OTHER) == []  # the mailing was north's only
    assert _runs(stack, first, MAIL)[0]["event_id"] != _runs(stack, second, MAIL)[0]["event_id"]
    assert sent["id"] not in {r["rule_id"] for r in _runs(stack, first, MAIL)}


def test_conditions_see_the_result_and_a_closed_deal_is_left_alone(
    stack: Stack, pipelines: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    pipeline, _ = pipelines
    rule = _rule(
        stack,
        pipeline,
        trigger={"kind": "mailing_result", "channel": "fax"},
        conditions={"any": [{"cel": "event.result in ['failed', 'complained']"}]},
        actions=[{"kind": "add_tags", "tags": ["факс-не-прошёл"]}],
    )
    client = stack.organization(MAIL)
    person = stack.person(MAIL)
    open_deal = _deal(stack, pipeline, client)
    closed = _deal(stack, pipeline, client)
    won = pipeline["stages"][2]["id"]
    current = stack.call("GET", f"/v1/deals/{closed}", stack.user(MAIL))
    moved = stack.call(
        "POST",
        f"/v1/deals/{closed}/move",
        stack.user(MAIL),
        json={"stage_id": won},
        if_match=current.headers["ETag"],
    )
    assert moved.status_code == 200, moved.text

    ok = _result(person, client, "sent", channel="fax")
    email = _result(person, client, "failed")
    failed = _result(person, client, "failed", channel="fax")
    stack.send(MAILING_RESULTS, [ok, email, failed])
    _applied(stack, ok, email, failed)
    runs = [r for r in _runs(stack, open_deal, MAIL) if r["rule_id"] == rule["id"]]
    by_source = {r["trigger"]["source_event_id"]: r["status"] for r in runs}
    assert by_source[str(failed.event_id)] == "fired"
    assert str(email.event_id) not in by_source  # an e-mail: the trigger's channel is fax
    assert by_source[str(ok.event_id)] == "conditions_not_met"
    assert _runs(stack, closed, MAIL) == []

    # a rule is tested against the results that came before it (nothing runs)
    later = _rule(
        stack,
        pipeline,
        enabled=False,
        trigger={"kind": "mailing_result", "result": "failed", "channel": "fax"},
        actions=[{"kind": "add_tags", "tags": ["никогда"]}],
    )
    answer = stack.call(
        "POST", f"{RULES}/{later['id']}/backtest", stack.user(MAIL), json={"last": 100}
    )
    assert answer.status_code == 200, answer.text
    mine = [r for r in answer.json()["results"] if r["deal_id"] == open_deal]
    assert {r["event_type"] for r in mine} >= {"campaigns.mailing.result_recorded"}
    fired = [r["trigger"]["source_event_id"] for r in mine if r["would_fire"]]
    assert fired == [str(failed.event_id)]
    assert later["id"] not in {r["rule_id"] for r in _runs(stack, open_deal, MAIL)}  # nothing ran


@pytest.mark.parametrize(
    "trigger",
    [
        {"kind": "mailing_result", "result": "delivered"},
        {"kind": "mailing_result", "channel": "post"},
        {"kind": "mailing_result", "campaign_id": "не-uuid"},
        {"kind": "mailing_result", "extra": 1},
    ],
)
def test_bad_mailing_result_triggers_are_refused(
    stack: Stack, pipelines: tuple[dict[str, Any], dict[str, Any]], trigger: dict[str, Any]
) -> None:
    pipeline, _ = pipelines
    body = {"pipeline_id": pipeline["id"], "name": "x", "trigger": trigger, "actions": []}
    response = stack.call("POST", RULES, stack.user(MAIL), json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_the_rule_schema_names_the_trigger(stack: Stack) -> None:
    schema = stack.call("GET", f"{RULES}/schema", stack.user(MAIL)).json()
    assert "MailingResult" in schema["$defs"]


def test_the_trigger_filters_each_fact_it_names() -> None:
    mailing, campaign = uuid.uuid4(), uuid.uuid4()
    facts = {
        "mailing_id": str(mailing),
        "campaign_id": str(campaign),
        "channel": "email",
        "result": "complained",
    }
    assert MailingResult(kind="mailing_result").matches(facts)
    assert MailingResult(kind="mailing_result", mailing_id=mailing, result="complained").matches(
        facts
    )
    assert not MailingResult(kind="mailing_result", mailing_id=uuid.uuid4()).matches(facts)
    assert not MailingResult(kind="mailing_result", campaign_id=mailing).matches(facts)
    assert not MailingResult(kind="mailing_result", channel="fax").matches(facts)
    assert not MailingResult(kind="mailing_result", result="sent").matches(facts)
    assert not MailingResult(kind="mailing_result", campaign_id=campaign).matches(
        {**facts, "campaign_id": None}
    )
