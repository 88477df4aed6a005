"""Watched triggers fired in batches against the real stack with two pipeline replicas: many
due watches fire once each, a broken one is recorded and the rest of its batch fires, and a
birthday is watched again for next year even after its firing broke; a rule written over more
deals than a page watches each of them (ADR 55)."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from clientele_shared.events.schemas.directory import PersonCreated
from clientele_testkit.processes import ServiceProcess, wait_for
from pipeline_testkit import DEFAULT_STAGES, Stack

VENV_BIN = Path(sys.executable).parent
RULES = "/v1/automation/rules"
BATCH = ["watch-batch"]
MSK = ZoneInfo("Europe/Moscow")  # the company calendar's zone (this direction has none)


@pytest.fixture(scope="module")
def replica(
    service_env: dict[str, str], pipeline_migrated: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """A second pipeline process on the same database and topics: its scheduler takes
    batches of the same due watches."""
    process = ServiceProcess(
        "pipeline",
        {**service_env, "DATABASE_URL": pipeline_migrated},
        tmp_path_factory.mktemp("replica"),
        VENV_BIN,
    )
    try:
        wait_for(process.ready, 180, "the second pipeline replica to be ready")
        yield process
    finally:
        process.stop()


def _pipeline(stack: Stack) -> dict[str, Any]:
    body = {"name": "Пачки", "directions": BATCH, "stages": DEFAULT_STAGES}
    response = stack.call("POST", "/v1/pipelines", stack.user(BATCH), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _rule(stack: Stack, pipeline: dict[str, Any], **definition: Any) -> dict[str, Any]:
    body = {"pipeline_id": pipeline["id"], "name": "Правило", **definition}
    response = stack.call("POST", RULES, stack.user(BATCH), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _deal(
    stack: Stack, pipeline: dict[str, Any], *persons: uuid.UUID, tags: tuple[str, ...] = ()
) -> dict[str, Any]:
    body = {
        "pipeline_id": pipeline["id"],
        "organization_id": str(stack.organization(BATCH)),
        "title": "Сделка",
        "person_ids": [str(p) for p in persons],
        "tags": list(tags),
    }
    response = stack.call("POST", "/v1/deals", stack.user(BATCH), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _watches(stack: Stack, rule: dict[str, Any]) -> int:
    found = stack.scalar(
        "SELECT count(*) FROM automation_watches WHERE rule_id = :rule", rule=rule["id"]
    )
    return int(found)


def _firings(stack: Stack, rule: dict[str, Any]) -> int:
    found = stack.scalar(
        "SELECT count(*) FROM automation_firings WHERE rule_id = :rule", rule=rule["id"]
    )
    return int(found)


def test_many_due_watches_fire_once_each_across_two_replicas(
    stack: Stack, replica: ServiceProcess
) -> None:
    pipeline = _pipeline(stack)
    rule = _rule(
        stack,
        pipeline,
        trigger={"kind": "no_activity", "days": 1},
        actions=[{"kind": "add_tags", "tags": ["quiet"]}],
    )
    deals = [_deal(stack, pipeline) for _ in range(130)]  # three batches and more
    wait_for(lambda: _watches(stack, rule) == len(deals), 60, "every deal's watch")
    stack.execute(  # a day passes: all due at once, for both replicas' schedulers
        "UPDATE automation_watches SET due_at = now() WHERE rule_id = :rule", rule=rule["id"]
    )
    wait_for(lambda: _firings(stack, rule) == len(deals), 60, "every watch fired")
    wait_for(lambda: _watches(stack, rule) == 0, 30, "every watch taken")
    assert _firings(stack, rule) == len(deals)  # once each
    per_deal = stack.scalar(
        "SELECT json_agg(DISTINCT n) FROM (SELECT count(*) AS n FROM automation_firings "
        "WHERE rule_id = :rule GROUP BY deal_id) c",
        rule=rule["id"],
    )
    assert per_deal == [1]
    user = stack.user(BATCH)
    for deal in deals[::13]:
        current = stack.call("GET", f"/v1/deals/{deal['id']}", user).json()
        assert current["tags"] == ["quiet"]
        assert current["version"] == 2  # the action ran once
        runs = stack.call("GET", f"/v1/deals/{deal['id']}/automation-runs", user).json()
        assert [run["status"] for run in runs] == ["fired"]
        assert runs[0]["steps"][0]["status"] == "done"
    stack.call("DELETE", f"{RULES}/{rule['id']}", user, if_match=1)


def _person(stack: Stack, birthday: Any) -> uuid.UUID:
    person_id = uuid.uuid4()
    payload = PersonCreated(
        person_id=person_id,
        last_name="Петрова",
        first_name="Ольга",
        birthday=birthday,
        directions=BATCH,
    )
    stack.publish("person", "directory.person.created", payload, person_id)
    stack.wait_until(
        "SELECT count(*) FROM persons WHERE person_id = :id", 1, "the person", id=person_id
    )
    return person_id


def test_a_broken_watch_is_recorded_its_batch_fires_and_a_birthday_is_watched_next_year(
    stack: Stack, replica: ServiceProcess
) -> None:
    pipeline = _pipeline(stack)
    quiet = _rule(  # not on the celebrated deal: its firing changes nothing there
        stack,
        pipeline,
        trigger={"kind": "no_activity", "days": 1},
        conditions={"all": [{"cel": "!('vip' in deal.tags)"}]},
        actions=[{"kind": "add_tags", "tags": ["quiet"]}],
    )
    soon = (datetime.now(UTC) + timedelta(seconds=45)).astimezone(MSK)
    birthday = _rule(
        stack,
        pipeline,
        trigger={
            "kind": "date_reached",
            "field": "contact.birthday",
            "at": soon.time().replace(microsecond=0).isoformat(),
        },
        actions=[{"kind": "add_tags", "tags": ["birthday"]}],
    )
    # the database refuses the birthday rule's firings (a failed one is recorded): it breaks
    stack.execute(
        "CREATE FUNCTION test_refuse_firing() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        f" IF NEW.rule_id = '{birthday['id']}' AND NEW.status <> 'failed' THEN"
        " RAISE EXCEPTION 'refused for the test'; END IF; RETURN NEW; END $$"
    )
    stack.execute(
        "CREATE TRIGGER test_refuse_firing BEFORE INSERT ON automation_firings"
        " FOR EACH ROW EXECUTE FUNCTION test_refuse_firing()"
    )
    try:
        _broken_birthday(stack, pipeline, quiet, birthday, soon)
    finally:
        stack.execute("DROP TRIGGER test_refuse_firing ON automation_firings")
        stack.execute("DROP FUNCTION test_refuse_firing()")
    stack.execute(
        "UPDATE automation_rules SET deleted_at = now() WHERE pipeline_id = :p", p=pipeline["id"]
    )


def _broken_birthday(
    stack: Stack,
    pipeline: dict[str, Any],
    quiet: dict[str, Any],
    birthday: dict[str, Any],
    soon: datetime,
) -> None:
    person = _person(stack, soon.date().replace(year=1985))
    celebrated = _deal(stack, pipeline, person, tags=("vip",))
    deals = [celebrated, *(_deal(stack, pipeline) for _ in range(5))]
    wait_for(lambda: _watches(stack, quiet) == len(deals), 60, "the inactivity watches")
    wait_for(lambda: _watches(stack, birthday) == 1, 60, "the birthday's watch")
    due_at = stack.scalar(
        "SELECT due_at FROM automation_watches WHERE rule_id = :r", r=birthday["id"]
    )
    assert due_at.replace(microsecond=0) == soon.replace(microsecond=0)
    stack.execute(  # all due together, one batch
        "UPDATE automation_watches SET due_at = :at WHERE rule_id = :r", at=due_at, r=quiet["id"]
    )
    wait_for(lambda: _firings(stack, quiet) == len(deals), 90, "the inactivity firings")
    wait_for(lambda: _firings(stack, birthday) == 1, 30, "the broken firing recorded")
    user = stack.user(BATCH)
    for deal in deals[1:]:
        current = stack.call("GET", f"/v1/deals/{deal['id']}", user).json()
        assert current["tags"] == ["quiet"]
    runs = stack.call("GET", f"/v1/deals/{celebrated['id']}/automation-runs", user).json()
    assert next(run for run in runs if run["rule_id"] == quiet["id"])["status"] == (
        "conditions_not_met"
    )
    assert stack.call("GET", f"/v1/deals/{celebrated['id']}", user).json()["version"] == 1
    broken = next(run for run in runs if run["rule_id"] == birthday["id"])
    assert broken["status"] == "failed"
    assert "refused for the test" in broken["reason"]
    assert broken["trigger"]["date"] == soon.date().isoformat()
    assert broken["rule_version"] == 1
    noted = stack.scalar(
        "SELECT count(*) FROM audit_log WHERE entity_id = :id AND action = 'automation_failed'",
        id=celebrated["id"],
    )
    assert noted == 1  # on the deal's timeline too
    next_year = soon.date().replace(year=soon.year + 1).isoformat()
    basis = stack.scalar(
        "SELECT basis FROM automation_watches WHERE rule_id = :r AND deal_id = :d",
        r=birthday["id"],
        d=celebrated["id"],
    )
    assert basis == next_year  # watched again though this year's firing broke (no deal event)


def test_a_rule_written_watches_every_live_deal_of_a_large_pipeline_page_by_page(
    stack: Stack,
) -> None:
    """More deals than a page (2,000), created in one statement (one creation time: the pages
    follow the id): each live deal is watched once, a date already past and a deleted deal
    are not, and the birthdays come from the persons read model."""
    pipeline = _pipeline(stack)
    person = _person(stack, date(1990, 3, 15))
    count = 2_100
    stack.execute(
        "INSERT INTO deals (id, pipeline_id, stage_id, status, organization_id, title,"
        " directions, version, created_by, updated_by, expected_close_date, person_ids,"
        " primary_person_id, deleted_at)"
        " SELECT gen_random_uuid(), :pipeline, :stage, 'open', :organization, 'Сделка ' || n,"
        " ARRAY['watch-batch'], 1, 'test', 'test',"
        " CASE WHEN n % 10 = 0 THEN current_date - 1 ELSE current_date + 10 + n % 50 END,"
        " CASE WHEN n % 3 = 0 THEN ARRAY[CAST(:person AS uuid)] ELSE '{}' END,"
        " CASE WHEN n % 3 = 0 THEN CAST(:person AS uuid) END,"
        " CASE WHEN n % 7 = 0 THEN now() END"
        " FROM generate_series(1, :count) n",
        pipeline=pipeline["id"],
        stage=pipeline["stages"][0]["id"],
        organization=stack.organization(BATCH),
        person=person,
        count=count,
    )
    live = [n for n in range(1, count + 1) if n % 7]
    dated = _rule(
        stack,
        pipeline,
        trigger={
            "kind": "date_reached",
            "field": "expected_close_date",
            "offset_days": -1,
            "at": "10:00",
        },
        actions=[{"kind": "add_tags", "tags": ["close"]}],
    )
    assert _watches(stack, dated) == len([n for n in live if n % 10])  # set at once
    sample = stack.scalar(
        "SELECT json_build_array(d.expected_close_date, w.due_at, w.basis)"
        " FROM automation_watches w JOIN deals d ON d.id = w.deal_id"
        " WHERE w.rule_id = :rule LIMIT 1",
        rule=dated["id"],
    )
    day = date.fromisoformat(sample[0])
    assert sample[2] == day.isoformat()
    expected = datetime.combine(day - timedelta(days=1), time(10), tzinfo=MSK)
    assert datetime.fromisoformat(sample[1]) == expected
    birthday = _rule(
        stack,
        pipeline,
        trigger={"kind": "date_reached", "field": "contact.birthday", "at": "09:00"},
        actions=[{"kind": "add_tags", "tags": ["birthday"]}],
    )
    assert _watches(stack, birthday) == len([n for n in live if n % 3 == 0])
    bases = stack.scalar(
        "SELECT json_agg(DISTINCT basis) FROM automation_watches WHERE rule_id = :rule",
        rule=birthday["id"],
    )
    assert len(bases) == 1
    assert bases[0][4:] == "-03-15"
    user = stack.user(BATCH)
    for rule in (dated, birthday):
        stack.call("DELETE", f"{RULES}/{rule['id']}", user, if_match=1)
        assert _watches(stack, rule) == 0
