"""The birthday trigger against the real stack: N days before a deal's primary contact's
birthday, from the persons read model the directory's events feed; moved when the birthday
changes, once a year per deal and rule, 29 February on 28 February in other years."""

from __future__ import annotations

import asyncio
import threading
import uuid
from calendar import isleap
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from clientele_shared.events.schemas.base import FieldChange
from clientele_shared.events.schemas.directory import PersonCreated, PersonState, PersonUpdated
from clientele_testkit.processes import wait_for
from pipeline_testkit import DEFAULT_STAGES, Stack

RULES = "/v1/automation/rules"
BIRTH = ["birth"]
MSK = ZoneInfo("Europe/Moscow")  # the company calendar's zone (this direction has none)


@pytest.fixture(scope="module")
def pipeline(stack: Stack) -> dict[str, Any]:
    body = {"name": "Дни рождения", "directions": BIRTH, "stages": DEFAULT_STAGES}
    response = stack.call("POST", "/v1/pipelines", stack.user(BIRTH), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _person(stack: Stack, birthday: date | None) -> uuid.UUID:
    person_id = uuid.uuid4()
    payload = PersonCreated(
        person_id=person_id,
        last_name="Сидорова",
        first_name="Анна",
        birthday=birthday,
        directions=BIRTH,
    )
    stack.publish("person", "directory.person.created", payload, person_id)
    stack.wait_until(
        "SELECT count(*) FROM persons WHERE person_id = :id", 1, "the person", id=person_id
    )
    return person_id


def _new_birthday(
    stack: Stack, person_id: uuid.UUID, version: int, old: date | None, new: date
) -> None:
    payload = PersonUpdated(
        person_id=person_id,
        version=version,
        changes={"birthday": FieldChange(old=old and old.isoformat(), new=new.isoformat())},
    )
    stack.publish("person", "directory.person.updated", payload, person_id)


def _rule(stack: Stack, pipeline: dict[str, Any], offset_days: int, at: str) -> dict[str, Any]:
    body = {
        "pipeline_id": pipeline["id"],
        "name": "Поздравить",
        "trigger": {
            "kind": "date_reached",
            "field": "contact.birthday",
            "offset_days": offset_days,
            "at": at,
        },
        "actions": [{"kind": "add_tags", "tags": ["birthday"]}],
    }
    response = stack.call("POST", RULES, stack.user(BIRTH), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _deal(stack: Stack, pipeline: dict[str, Any], *persons: uuid.UUID) -> dict[str, Any]:
    body = {
        "pipeline_id": pipeline["id"],
        "organization_id": str(stack.organization(BIRTH)),
        "title": "Сделка",
        "person_ids": [str(p) for p in persons],
    }
    response = stack.call("POST", "/v1/deals", stack.user(BIRTH), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _watch(stack: Stack, rule: dict[str, Any], deal: dict[str, Any]) -> tuple[Any, Any] | None:
    row = stack.scalar(
        "SELECT json_build_array(due_at, basis) FROM automation_watches "
        "WHERE rule_id = :rule AND deal_id = :deal",
        rule=rule["id"],
        deal=deal["id"],
    )
    return None if row is None else (datetime.fromisoformat(row[0]), row[1])


def _due_now(stack: Stack, rule: dict[str, Any], deal: dict[str, Any]) -> datetime:
    """Make the deal's watch of the rule due now (as if its time had come); its due time."""
    found = _watch(stack, rule, deal)
    assert found is not None
    stack.execute(
        "UPDATE automation_watches SET due_at = now() WHERE rule_id = :rule AND deal_id = :deal",
        rule=rule["id"],
        deal=deal["id"],
    )
    return found[0]  # type: ignore[no-any-return]


def _basis(stack: Stack, rule: dict[str, Any], deal: dict[str, Any]) -> str | None:
    found = _watch(stack, rule, deal)
    return None if found is None else str(found[1])


def _runs(stack: Stack, deal: dict[str, Any], rule: dict[str, Any]) -> list[dict[str, Any]]:
    runs = stack.call("GET", f"/v1/deals/{deal['id']}/automation-runs", stack.user(BIRTH)).json()
    return [run for run in runs if run["rule_id"] == rule["id"]]


def test_days_before_the_contacts_birthday_moved_when_it_changes_once_a_year(
    stack: Stack, pipeline: dict[str, Any]
) -> None:
    day = datetime.now(MSK).date() + timedelta(days=4)  # 3 days before it: tomorrow
    while (day.month, day.day) in {(2, 28), (2, 29), (12, 31)}:  # `day` or `later` not in
        day += timedelta(days=1)  # 1985, or `later` in another year
    near = day.replace(year=1985)
    far = (day + timedelta(days=60)).replace(year=1985)
    rule = _rule(stack, pipeline, -3, "12:00")
    contact, other = _person(stack, far), _person(stack, near)
    deal = _deal(stack, pipeline, contact, other)  # `contact` is the primary
    secondary = _deal(stack, pipeline, _person(stack, None), other)
    wait_for(lambda: _watch(stack, rule, deal) is not None, 30, "the birthday's watch")
    first = day + timedelta(days=60)
    assert _basis(stack, rule, deal) == first.isoformat()
    assert _watch(stack, rule, secondary) is None  # a secondary contact's birthday: no watch

    _new_birthday(stack, contact, 2, far, near)  # moved to `day`
    wait_for(lambda: _basis(stack, rule, deal) == day.isoformat(), 30, "the moved watch")
    due_at = _due_now(stack, rule, deal)
    assert due_at == datetime.combine(day - timedelta(days=3), time(12), tzinfo=MSK)
    wait_for(lambda: bool(_runs(stack, deal, rule)), 60, "the firing on the new birthday")
    run = _runs(stack, deal, rule)[0]
    assert run["trigger"] == {
        "kind": "date_reached",
        "field": "contact.birthday",
        "date": day.isoformat(),
        "offset_days": -3,
    }
    assert run["status"] == "fired"
    assert run["steps"][0]["status"] == "done"
    user = stack.user(BIRTH)
    assert stack.call("GET", f"/v1/deals/{deal['id']}", user).json()["tags"] == ["birthday"]
    # taken in the firing's transaction and set again: when it comes, it has fired this year
    wait_for(lambda: _watch(stack, rule, deal) == (due_at, day.isoformat()), 30, "the watch again")

    # moved again, to a day still ahead this year: it does not fire a second time this year
    later = day + timedelta(days=1)
    _new_birthday(stack, contact, 3, near, later.replace(year=1985))
    wait_for(lambda: _basis(stack, rule, deal) == later.isoformat(), 30, "the moved watch")
    due_at = _due_now(stack, rule, deal)
    wait_for(lambda: _watch(stack, rule, deal) == (due_at, later.isoformat()), 30, "taken, set")
    assert len(_runs(stack, deal, rule)) == 1
    stack.call("DELETE", f"{RULES}/{rule['id']}", user, if_match=1)


def test_29_february_falls_on_28_february_in_a_year_without_it(
    stack: Stack, pipeline: dict[str, Any]
) -> None:
    rule = _rule(stack, pipeline, 0, "10:00")
    deal = _deal(stack, pipeline, _person(stack, date(1992, 2, 29)))
    wait_for(lambda: _watch(stack, rule, deal) is not None, 30, "the birthday's watch")
    found = _watch(stack, rule, deal)
    assert found is not None
    due_at, basis = found
    year = int(basis[:4])
    assert basis == f"{year}-02-{29 if isleap(year) else 28}"
    assert due_at == datetime.combine(date.fromisoformat(basis), time(10), tzinfo=MSK)
    stack.execute("UPDATE automation_watches SET due_at = now() WHERE rule_id = :r", r=rule["id"])
    wait_for(lambda: bool(_runs(stack, deal, rule)), 30, "the firing")
    assert _runs(stack, deal, rule)[0]["trigger"]["date"] == basis
    closed = stack.call(  # a deal no longer open watches no birthday
        "POST",
        f"/v1/deals/{deal['id']}/move",
        stack.user(BIRTH),
        if_match=2,
        json={"stage_id": pipeline["stages"][2]["id"]},
    )
    assert closed.status_code == 200, closed.text
    wait_for(lambda: _watch(stack, rule, deal) is None, 30, "the watch dropped")


def test_a_state_snapshot_of_the_same_version_fills_a_birthday_in(
    stack: Stack, pipeline: dict[str, Any]
) -> None:
    """Persons stored before the read model kept birthdays get theirs from a republished
    state record of the version they already have (`clientele republish directory persons`)."""
    rule = _rule(stack, pipeline, 0, "09:00")
    person_id = _person(stack, None)
    deal = _deal(stack, pipeline, person_id)
    state = PersonState(
        person_id=person_id,
        version=1,
        revision=1,
        last_name="Сидорова",
        first_name="Анна",
        birthday=date(1979, 6, 1),
        directions=BIRTH,
    )
    stack.publish_state("directory.person.state", state, str(person_id))
    stack.wait_until(
        "SELECT birthday::text FROM persons WHERE person_id = :id",
        "1979-06-01",
        "the birthday filled in",
        id=person_id,
    )
    wait_for(lambda: _watch(stack, rule, deal) is not None, 30, "the birthday's watch")
    assert str(_basis(stack, rule, deal))[4:] == "-06-01"
    stack.call("DELETE", f"{RULES}/{rule['id']}", stack.user(BIRTH), if_match=1)


@contextmanager
def _held(stack: Stack, deal_id: str) -> Iterator[None]:
    """The deal's row locked, as the deal events' consumer holds it, until the block ends."""
    locked, release = threading.Event(), threading.Event()
    failed: list[BaseException] = []

    async def hold() -> None:
        try:
            await holding()
        except BaseException as exc:
            failed.append(exc)

    async def holding() -> None:
        conn = await asyncpg.connect(stack.database_url)
        try:
            async with conn.transaction():
                await conn.execute(
                    "SELECT 1 FROM deals WHERE id = $1 FOR UPDATE", uuid.UUID(deal_id)
                )
                locked.set()
                await asyncio.to_thread(release.wait)
        finally:
            await conn.close()

    thread = threading.Thread(target=asyncio.run, args=(hold(),))
    thread.start()
    try:
        assert locked.wait(30), f"the deal could not be locked: {failed}"
        yield
    finally:
        release.set()
        thread.join()


def test_a_birthday_that_comes_while_a_deal_event_holds_the_deal_waits_for_it(
    stack: Stack, pipeline: dict[str, Any]
) -> None:
    """The persons' consumer re-times a deal's watch after the deal events' consumer, never
    beside it: that one may have read the birthday as missing and would then drop the watch
    set from it (the watch was lost when a birthday came with the deal's creation)."""
    rule = _rule(stack, pipeline, 0, "09:00")
    person_id = _person(stack, None)
    deal = _deal(stack, pipeline, person_id)
    stack.wait_until(  # the deal events' consumer is done with the deal's creation
        "SELECT count(*) FROM automation_recent_events WHERE deal_id = :deal",
        1,
        "the deal's creation taken by the automation",
        deal=deal["id"],
    )
    waiting = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND query LIKE '%FROM deals%FOR UPDATE%'"
    )
    with _held(stack, deal["id"]):
        _new_birthday(stack, person_id, 2, None, date(1979, 6, 1))
        wait_for(lambda: stack.scalar(waiting) == 1, 30, "the persons' consumer waiting")
    wait_for(lambda: _watch(stack, rule, deal) is not None, 30, "the birthday's watch")
    assert str(_basis(stack, rule, deal))[4:] == "-06-01"
    stack.call("DELETE", f"{RULES}/{rule['id']}", stack.user(BIRTH), if_match=1)
