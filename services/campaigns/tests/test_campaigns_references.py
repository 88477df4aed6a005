"""References a greeting or a mailing makes, checked as the caller sees them: a list of another
direction is refused like a list that does not exist (422 unknown_reference, nothing written);
a time zone naming a folder of zones is a 422, not a 500; a greeting's writes need If-Match."""

from __future__ import annotations

import uuid
from typing import Any

from clientele_testkit.stack import Stack
from mailings_testkit import mailing_body

TEMPLATE = {
    "subject": "С днём рождения, {{ person.salutation }}!",
    "html": '<p>{{ person.salutation }}!</p><a href="{{ unsubscribe_url }}">Отписаться</a>',
    "text": "{{ person.salutation }}! Отписаться: {{ unsubscribe_url }}",
}


def _list(stack: Stack, directions: list[str]) -> uuid.UUID:
    list_id = uuid.uuid4()
    stack.static_list(list_id, [uuid.uuid4()], name="Бухгалтеры", directions=directions)
    stack.wait_until(
        "SELECT count(*) FROM directory_lists WHERE list_id = :id", 1, "the list", id=list_id
    )
    return list_id


def _greeting(directions: list[str], **change: Any) -> dict[str, Any]:
    return {
        "title": "Поздравление",
        "directions": directions,
        "occasion": {"kind": "birthday"},
        "template": TEMPLATE,
        "active": False,
        **change,
    }


def _refused(response: Any) -> None:
    """A 422 naming the audience's list as an unknown reference."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    [error] = response.json()["errors"]
    assert (error["location"][-2:], error["type"]) == (["audience", "list_id"], "unknown_reference")


def test_a_greeting_cannot_name_another_directions_list(stack: Stack) -> None:
    south_list, north_list = _list(stack, ["south"]), _list(stack, ["north"])
    north = stack.user(["north"])
    before = stack.scalar("SELECT count(*) FROM greetings")
    audience = {"audience": {"list_id": str(south_list)}}
    response = stack.call("POST", "/v1/greetings", north, json=_greeting(["north"], **audience))
    _refused(response)
    assert stack.scalar("SELECT count(*) FROM greetings") == before

    own = {"audience": {"list_id": str(north_list)}}
    created = stack.call("POST", "/v1/greetings", north, json=_greeting(["north"], **own))
    assert created.status_code == 201, created.text
    path = f"/v1/greetings/{created.json()['id']}"
    response = stack.call("PATCH", path, north, if_match=1, json=audience)
    _refused(response)
    assert stack.scalar(
        "SELECT audience->>'list_id' FROM greetings WHERE id = :id", id=created.json()["id"]
    ) == str(north_list)


def test_a_mailing_cannot_name_another_directions_list(stack: Stack) -> None:
    south_list = _list(stack, ["south"])
    before = stack.scalar("SELECT count(*) FROM mailings")
    body = mailing_body({"kind": "list", "list_id": str(south_list)})
    response = stack.call("POST", "/v1/mailings", stack.user(["north"]), json=body)
    _refused(response)
    assert stack.scalar("SELECT count(*) FROM mailings") == before
    # the list's own direction may name it
    south = mailing_body({"kind": "list", "list_id": str(south_list)}, directions=["south"])
    assert stack.call("POST", "/v1/mailings", stack.user(["south"]), json=south).status_code == 201


def test_a_folder_of_time_zones_is_no_time_zone(stack: Stack) -> None:
    north = stack.user(["north"])
    before = stack.scalar("SELECT count(*) FROM greetings")
    for zone in ("Europe", "America"):
        response = stack.call(
            "POST", "/v1/greetings", north, json=_greeting(["north"], time_zone=zone)
        )
        assert response.status_code == 422, response.text
        assert "time_zone" in response.text
    assert stack.scalar("SELECT count(*) FROM greetings") == before

    created = stack.call("POST", "/v1/greetings", north, json=_greeting(["north"]))
    assert created.status_code == 201, created.text
    path = f"/v1/greetings/{created.json()['id']}"
    response = stack.call("PATCH", path, north, if_match=1, json={"time_zone": "Europe"})
    assert response.status_code == 422, response.text

    recurrence = {"every": "week", "at": "10:00", "time_zone": "Europe"}
    body = mailing_body(
        {"kind": "organizations"}, scheduled_at="2030-01-07T10:00:00+03:00", recurrence=recurrence
    )
    response = stack.call("POST", "/v1/mailings", north, json=body)
    assert response.status_code == 422, response.text
    assert "time_zone" in response.text


def test_greeting_and_holiday_writes_need_if_match(stack: Stack) -> None:
    north = stack.user(["north"])
    created = stack.call("POST", "/v1/greetings", north, json=_greeting(["north"]))
    assert created.status_code == 201, created.text
    path = f"/v1/greetings/{created.json()['id']}"
    assert stack.call("PATCH", path, north, json={"title": "x"}).status_code == 428
    admin = stack.user(["north"], roles=["admin"])
    holiday = stack.call(
        "POST",
        "/v1/professional-holidays",
        admin,
        json={"name": "День проверки", "rule": {"kind": "fixed", "month": 3, "day": 3}},
    )
    assert holiday.status_code == 201, holiday.text
    path = f"/v1/professional-holidays/{holiday.json()['id']}"
    assert stack.call("PATCH", path, admin, json={"name": "x"}).status_code == 428
    assert stack.call("DELETE", path, admin).status_code == 428
    assert stack.call("DELETE", path, admin, if_match=2).status_code == 412
    assert stack.call("GET", path, north).status_code == 200


def test_a_field_patched_to_null_is_refused_not_a_server_error(stack: Stack) -> None:
    north = stack.user(["north"])
    created = stack.call("POST", "/v1/greetings", north, json=_greeting(["north"]))
    assert created.status_code == 201, created.text
    greeting = f"/v1/greetings/{created.json()['id']}"
    admin = stack.user(["north"], roles=["admin"])
    made = stack.call(
        "POST",
        "/v1/professional-holidays",
        admin,
        json={"name": "День пустоты", "rule": {"kind": "fixed", "month": 4, "day": 4}},
    )
    assert made.status_code == 201, made.text
    holiday = f"/v1/professional-holidays/{made.json()['id']}"
    for path, who, field in (
        (greeting, north, "title"),
        (greeting, north, "template"),
        (greeting, north, "audience"),
        (greeting, north, "send_at"),
        (greeting, north, "active"),
        (holiday, admin, "name"),
        (holiday, admin, "rule"),
        (holiday, admin, "industries"),
    ):
        response = stack.call("PATCH", path, who, if_match=1, json={field: None})
        assert response.status_code == 422, (field, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert field in response.text
        assert stack.call("GET", path, who).json()["version"] == 1
