"""The deal events' inbox batches fired together (ADR 54), against the real stack: several
events of one deal in a batch each fire in order on the deal as the one before left it,
deals in one batch do not touch each other, and a batch partly applied before fires only
what it had not."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from clientele_shared.events.catalog import DEALS
from clientele_shared.events.envelope import Actor, Envelope
from clientele_testkit.processes import wait_for
from pipeline_testkit import DEFAULT_STAGES, Stack

RULES = "/v1/automation/rules"
BATCH = ["batches"]


@pytest.fixture(scope="module")
def pipeline(stack: Stack) -> dict[str, Any]:
    body = {"name": "Пачки", "directions": BATCH, "stages": DEFAULT_STAGES}
    response = stack.call("POST", "/v1/pipelines", stack.user(BATCH), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _rule(stack: Stack, pipeline: dict[str, Any], **definition: Any) -> dict[str, Any]:
    body = {"pipeline_id": pipeline["id"], "name": "Правило", **definition}
    response = stack.call("POST", RULES, stack.user(BATCH), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _grade_rule(
    stack: Stack, pipeline: dict[str, Any], grade: str, tags: list[str], **more: Any
) -> dict[str, Any]:
    trigger = {"kind": "field_changed", "field": "custom_fields.grade", "match": "to", "to": grade}
    return _rule(
        stack, pipeline, trigger=trigger, actions=[{"kind": "add_tags", "tags": tags}], **more
    )


def _deal(stack: Stack, pipeline: dict[str, Any]) -> dict[str, Any]:
    body = {
        "pipeline_id": pipeline["id"],
        "organization_id": str(stack.organization(BATCH)),
        "title": "Сделка",
    }
    response = stack.call("POST", "/v1/deals", stack.user(BATCH), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _graded(deal: dict[str, Any], old: str | None, new: str) -> Envelope:
    """A person's change of the deal's grade, as the pipeline's relay would publish it."""
    return Envelope(
        type="pipeline.deal.changed",
        schema_version=1,
        producer="pipeline",
        correlation_id=uuid.uuid4().hex,
        actor=Actor(subject="someone", kind="user"),
        aggregate_id=deal["id"],
        payload={
            "deal_id": deal["id"],
            "version": deal["version"],
            "organization_id": deal["organization_id"],
            "pipeline_id": deal["pipeline_id"],
            "changes": {"custom_fields": {"old": {"grade": old}, "new": {"grade": new}}},
        },
    )


def _firings(stack: Stack, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rules' firings: (rule, deal, event, status), in the order they ran."""
    runs: list[dict[str, Any]] = []
    for rule in rules:
        found = stack.call("GET", f"{RULES}/{rule['id']}/runs", stack.user(BATCH))
        assert found.status_code == 200, found.text
        runs += found.json()
    return sorted(runs, key=lambda run: run["started_at"])


def _tags(stack: Stack, deal: dict[str, Any]) -> list[str]:
    found = stack.call("GET", f"/v1/deals/{deal['id']}", stack.user(BATCH)).json()
    return list(found["tags"])


def test_a_batch_fires_each_event_in_turn_on_the_deal_as_the_one_before_left_it(
    stack: Stack, pipeline: dict[str, Any]
) -> None:
    first = _grade_rule(stack, pipeline, "a", ["a"])
    second = _grade_rule(
        stack, pipeline, "b", ["b"], conditions={"all": [{"cel": "'a' in deal.tags"}]}
    )
    one, two = _deal(stack, pipeline), _deal(stack, pipeline)
    events = [
        _graded(one, None, "a"),  # one: tagged a
        _graded(one, "a", "b"),  # one: has a by now, so tagged b
        _graded(two, None, "b"),  # two: never tagged a: conditions not met
        _graded(one, "b", "a"),  # one: the first rule again (nothing new to tag)
    ]
    stack.send(DEALS, events)
    wait_for(lambda: len(_firings(stack, [first, second])) == 4, 60, "four firings")
    runs = _firings(stack, [first, second])
    by_event = {run["event_id"]: run for run in runs}
    assert [by_event[str(e.event_id)]["rule_id"] for e in events] == [
        first["id"],
        second["id"],
        second["id"],
        first["id"],
    ]
    assert [by_event[str(e.event_id)]["status"] for e in events] == [
        "fired",
        "fired",
        "conditions_not_met",
        "fired",
    ]
    mine = [run for run in runs if run["deal_id"] == one["id"]]
    assert [run["event_id"] for run in mine] == [
        str(e.event_id) for e in events if e is not events[2]
    ]
    assert [step["status"] for run in mine for step in run["steps"]] == ["done"] * 3
    assert _tags(stack, one) == ["a", "b"]
    assert _tags(stack, two) == []
    # the deal was written once per tag added (the third firing changed nothing)
    assert stack.call("GET", f"/v1/deals/{one['id']}", stack.user(BATCH)).json()["version"] == 3


def test_a_batch_partly_applied_before_fires_only_its_new_events(
    stack: Stack, pipeline: dict[str, Any]
) -> None:
    rule = _grade_rule(stack, pipeline, "c", ["c"])
    deal, other = _deal(stack, pipeline), _deal(stack, pipeline)
    early = _graded(deal, None, "c")
    stack.send(DEALS, [early])
    wait_for(lambda: len(_firings(stack, [rule])) == 1, 60, "the first firing")
    later = [_graded(other, None, "c"), _graded(deal, "c", "c2"), _graded(deal, "c2", "c")]
    stack.send(DEALS, [early, *later, later[0]])  # the first and one of the new ones again
    wait_for(lambda: len(_firings(stack, [rule])) == 3, 60, "the new events' firings")
    runs = _firings(stack, [rule])
    assert sorted(run["event_id"] for run in runs) == sorted(
        str(e.event_id) for e in (early, later[0], later[2])
    )
    assert _tags(stack, deal) == ["c"]
    assert _tags(stack, other) == ["c"]
    # whatever comes next (the engine's own tag events included) fires nothing more
    stack.send(DEALS, [_graded(other, "c", "d")])
    wait_for(
        lambda: (
            stack.scalar(
                "SELECT count(*) FROM automation_recent_events WHERE deal_id = CAST(:deal AS uuid)",
                deal=other["id"],
            )
            >= 3
        ),
        60,
        "the last event taken",
    )
    assert len(_firings(stack, [rule])) == 3


def test_a_patch_that_fails_in_the_database_is_recorded_and_the_batch_still_applies(
    stack: Stack, pipeline: dict[str, Any]
) -> None:
    """A batch's patches are written together at its end (ADR 60): when that write fails in
    the database, the batch is applied again one event at a time, each action in its own
    savepoint, so the failing action is recorded as failed and every other event applies."""
    boom = _grade_rule(stack, pipeline, "boom", ["boom"])
    fine = _grade_rule(stack, pipeline, "fine", ["fine"])
    bad, good, also = _deal(stack, pipeline), _deal(stack, pipeline), _deal(stack, pipeline)
    stack.execute(
        "CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " IF 'boom' = ANY(NEW.tags) THEN RAISE EXCEPTION 'no boom here'; END IF;"
        " RETURN NEW; END $$"
    )
    stack.execute(
        "CREATE TRIGGER refuse_boom BEFORE UPDATE ON deals FOR EACH ROW"
        " EXECUTE FUNCTION refuse_boom()"
    )
    try:
        events = [
            _graded(good, None, "fine"),
            _graded(bad, None, "boom"),
            _graded(also, None, "fine"),
            _graded(bad, "boom", "fine"),  # the same deal, after the failed patch
        ]
        stack.send(DEALS, events)
        wait_for(lambda: len(_firings(stack, [boom, fine])) == 4, 60, "four firings")
    finally:
        stack.execute("DROP TRIGGER refuse_boom ON deals")
        stack.execute("DROP FUNCTION refuse_boom()")
    runs = {run["event_id"]: run for run in _firings(stack, [boom, fine])}
    failed = runs[str(events[1].event_id)]
    assert failed["status"] == "fired"
    assert [step["status"] for step in failed["steps"]] == ["failed"]
    assert "no boom here" in failed["steps"][0]["error"]
    for event in (events[0], events[2], events[3]):
        assert [step["status"] for step in runs[str(event.event_id)]["steps"]] == ["done"]
    assert _tags(stack, good) == ["fine"]
    assert _tags(stack, also) == ["fine"]
    assert _tags(stack, bad) == ["fine"]


def test_a_patch_refused_in_a_batch_changes_nothing_and_the_deals_next_patch_applies(
    stack: Stack, pipeline: dict[str, Any]
) -> None:
    """A patch refused before it is written (here: an empty title) is a failed step; the deal
    stays as it was, and the batch's next firing on it sees it so."""
    trigger = {"kind": "field_changed", "field": "custom_fields.grade", "match": "to", "to": "e"}
    empty = _rule(
        stack,
        pipeline,
        trigger=trigger,
        actions=[{"kind": "set_field", "field": "title", "value": ""}],
    )
    short = _grade_rule(stack, pipeline, "short", ["short"])
    deal, other = _deal(stack, pipeline), _deal(stack, pipeline)
    events = [_graded(deal, None, "e"), _graded(other, None, "short"), _graded(deal, "e", "short")]
    stack.send(DEALS, events)
    wait_for(lambda: len(_firings(stack, [empty, short])) == 3, 60, "three firings")
    runs = {run["event_id"]: run for run in _firings(stack, [empty, short])}
    assert [step["status"] for step in runs[str(events[0].event_id)]["steps"]] == ["failed"]
    assert [step["status"] for step in runs[str(events[2].event_id)]["steps"]] == ["done"]
    found = stack.call("GET", f"/v1/deals/{deal['id']}", stack.user(BATCH)).json()
    assert (found["title"], found["tags"]) == (deal["title"], ["short"])
    assert found["version"] == deal["version"] + 1
    assert _tags(stack, other) == ["short"]
