"""Organizations over real HTTP: directions, bad input, If-Match, audit, soft delete, events."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.catalog import ORGANIZATIONS, ORGANIZATIONS_STATE
from clientele_testkit.infra import Infrastructure
from clientele_testkit.processes import ServiceProcess, wait_for
from directory_testkit import (
    OTHER_INN,
    VALID_INN,
    VALID_KPP,
    VALID_OGRN,
    TopicTail,
    admin,
    bearer,
    fresh_direction,
    problem,
    sales,
)

pytestmark = pytest.mark.integration

FULL = {
    "legal_name": "ООО «Ромашка» 🌼",
    "short_name": "Ромашка",
    "inn": VALID_INN,
    "kpp": VALID_KPP,
    "ogrn": VALID_OGRN,
    "legal_address": {"text": "Москва, ул. Вавилова, 19", "country": "ru", "postal_code": "117312"},
    "phones": ["8 (495) 500-55-50", {"number": "+7 495 500 55 51", "kind": "fax"}],
    "emails": ["Info@Romashka.example"],
    "sites": ["romashka.example"],
    "industry": "Банки",
    "categories": ["A"],
    "tags": ["vip", "VIP", "опт"],
    "status": "client",
}


@pytest.fixture
async def client(directory: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=directory.url, timeout=30) as http:
        yield http


async def _create(
    client: httpx.AsyncClient, headers: dict[str, str], **fields: Any
) -> dict[str, Any]:
    response = await client.post("/v1/organizations", json=fields, headers=headers)
    assert response.status_code == 201, response.text
    assert response.headers["etag"] == 'W/"1"'
    body: dict[str, Any] = response.json()
    return body


async def test_directions_decide_who_reads_what(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north, south = fresh_direction(), fresh_direction()
    mine, theirs = sales(issuer, north), sales(issuer, south)
    org = await _create(client, mine, **FULL, directions=[north])
    assert org["phones"] == [
        {"number": "+74955005550", "kind": "work", "extension": None},
        {"number": "+74955005551", "kind": "fax", "extension": None},
    ]
    assert org["emails"] == ["info@romashka.example"]
    assert org["sites"] == ["https://romashka.example"]
    assert org["tags"] == ["vip", "опт"]
    assert org["legal_address"]["country"] == "RU"
    assert org["blocked"] is False
    url = f"/v1/organizations/{org['id']}"

    read = await client.get(url, headers=mine)
    assert read.status_code == 200
    assert read.headers["etag"] == 'W/"1"'
    assert read.json()["legal_name"] == FULL["legal_name"]
    for path in (url, f"{url}/audit", f"{url}?include_deleted=true"):
        problem(await client.get(path, headers=theirs), 404)
    officer = bearer(issuer, "officer", roles=["security_officer"])
    for viewer in (admin(issuer), officer):
        assert (await client.get(url, headers=viewer)).status_code == 200
    # a security officer reads every direction but writes nothing (403, nothing changed)
    edit = await client.patch(
        url, json={"legal_name": "ООО «Чужая»"}, headers=officer | {"If-Match": 'W/"1"'}
    )
    assert problem(edit, 403)["type"].endswith("/forbidden")
    assert (await client.get(url, headers=mine)).headers["etag"] == 'W/"1"'

    listed = (await client.get("/v1/organizations", headers=mine)).json()
    assert [item["id"] for item in listed] == [org["id"]]
    assert (await client.get("/v1/organizations", headers=theirs)).json() == []
    both = sales(issuer, north, south)
    assert [o["id"] for o in (await client.get("/v1/organizations", headers=both)).json()] == [
        org["id"]
    ]


async def test_bad_input_is_a_problem_and_writes_nothing(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    direction = fresh_direction()
    me = sales(issuer, direction)
    base = {"legal_name": "X", "directions": [direction]}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"inn": "7707083894"}, "checksum"),
        ({"inn": VALID_INN, "ogrn": "304500116000157"}, "13-digit OGRN"),
        ({"kpp": VALID_KPP}, "KPP needs"),
        ({"status": "friend"}, "prospect"),
        ({"phones": ["+7 000"]}, "phone"),
        ({"emails": ["a@@b"]}, "email"),
        ({"legal_name": "bad\u0000name"}, "NUL"),
        ({"legal_name": "x" * 501}, "500"),
        ({"tags": [f"t{i}" for i in range(51)]}, "50"),
        ({"unknown": 1}, "Extra inputs"),
        ({"responsible_employee_id": "not-a-uuid"}, "UUID"),
    ]
    for extra, message in cases:
        response = await client.post("/v1/organizations", json=base | extra, headers=me)
        body = problem(response, 422)
        assert message in response.text, (extra, body)
        assert body["errors"], body
    not_json = await client.post(
        "/v1/organizations", content=b"{", headers={**me, "content-type": "application/json"}
    )
    problem(not_json, 422)
    huge = await client.post(
        "/v1/organizations",
        content=b'{"legal_name": "' + b"x" * 2_000_000 + b'"}',
        headers={**me, "content-type": "application/json"},
    )
    problem(huge, 413)
    deep = await client.post(
        "/v1/organizations",
        content=b'{"legal_name": "x", "tags": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        headers={**me, "content-type": "application/json"},
    )
    assert "nests deeper" in problem(deep, 422)["detail"]
    for url in ("/v1/directions/a%00b", "/v1/employees?direction=a%00b"):
        assert problem(await client.get(url, headers=me), 422)["errors"], url
    overflow = f"/v1/organizations/{uuid.uuid4()}/audit?after=9223372036854775808"
    problem(await client.get(overflow, headers=me), 422)
    assert (await client.get("/v1/organizations", headers=me)).json() == []
    assert (await client.get("/v1/organizations?deleted=true", headers=me)).json() == []
    # a foreign company without Russian identifiers, in any script, is fine
    foreign = await _create(
        client, me, legal_name="株式会社 Ünïcödé", country="JP", directions=[direction]
    )
    assert foreign["inn"] is None


async def test_writes_outside_ones_directions_are_refused(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north, south = fresh_direction(), fresh_direction()
    mine, theirs = sales(issuer, north), sales(issuer, south)
    problem(
        await client.post(
            "/v1/organizations", json={"legal_name": "X", "directions": [south]}, headers=mine
        ),
        403,
    )
    org = await _create(client, mine, legal_name="Север", directions=[north])
    url = f"/v1/organizations/{org['id']}"
    match = {"If-Match": 'W/"1"'}
    # the invisible answer 404 to every write, whatever it carries
    problem(await client.patch(url, json={"legal_name": "Y"}, headers=theirs | match), 404)
    problem(await client.delete(url, headers=theirs | match), 404)
    problem(await client.post(f"{url}/restore", headers=theirs | match), 404)
    # moving into a direction one does not belong to is refused
    problem(await client.patch(url, json={"directions": [south]}, headers=mine | match), 403)
    problem(await client.patch(url, json={"directions": [north, south]}, headers=mine | match), 403)
    # an admin may move it; then its former owner no longer sees it
    moved = await client.patch(url, json={"directions": [south]}, headers=admin(issuer) | match)
    assert moved.status_code == 200, moved.text
    problem(await client.get(url, headers=mine), 404)
    assert (await client.get(url, headers=theirs)).status_code == 200
    assert (await client.get(url, headers=theirs)).json()["version"] == 2


async def test_updates_need_the_current_etag_and_are_audited_and_published(
    client: httpx.AsyncClient, issuer: TokenIssuer, tail: Callable[[str], TopicTail]
) -> None:
    topic = await tail(ORGANIZATIONS).start()
    direction = fresh_direction()
    me = sales(issuer, direction, subject="alice")
    org = await _create(client, me, legal_name="Старое имя", inn=VALID_INN, directions=[direction])
    url = f"/v1/organizations/{org['id']}"

    problem(await client.patch(url, json={"legal_name": "Новое"}, headers=me), 428)
    problem(
        await client.patch(url, json={"legal_name": "Новое"}, headers=me | {"If-Match": "*"}), 412
    )
    patch = {"legal_name": "Новое имя", "inn": OTHER_INN, "tags": ["vip"]}
    updated = await client.patch(
        url, json=patch, headers=me | {"If-Match": 'W/"1"', "X-Correlation-ID": "corr-patch-1"}
    )
    assert updated.status_code == 200, updated.text
    assert updated.headers["etag"] == 'W/"2"'
    assert updated.json()["legal_name"] == "Новое имя"
    stale = await client.patch(
        url, json={"legal_name": "Третье"}, headers=me | {"If-Match": 'W/"1"'}
    )
    assert problem(stale, 412)["current_version"] == 2
    assert stale.headers["etag"] == 'W/"2"'
    # a patch that changes nothing makes no version, no audit entry and no event
    same = await client.patch(url, json={"tags": ["vip"]}, headers=me | {"If-Match": '"2"'})
    assert same.status_code == 200
    assert same.headers["etag"] == 'W/"2"'
    # a patch that would break a rule writes nothing
    problem(
        await client.patch(url, json={"kpp": VALID_KPP}, headers=me | {"If-Match": 'W/"2"'}), 422
    )
    read = (await client.get(url, headers=me)).json()
    assert (read["legal_name"], read["inn"], read["kpp"], read["version"]) == (
        "Новое имя",
        OTHER_INN,
        None,
        2,
    )

    trail = (await client.get(f"{url}/audit", headers=me)).json()
    assert [entry["action"] for entry in trail] == ["created", "updated"]
    created, change = trail
    assert created["changes"]["legal_name"] == {"old": None, "new": "Старое имя"}
    assert created["actor_subject"] == "alice"
    assert change["version"] == 2
    assert change["actor_subject"] == "alice"
    assert change["correlation_id"] == "corr-patch-1"
    assert change["changes"] == {
        "legal_name": {"old": "Старое имя", "new": "Новое имя"},
        "inn": {"old": VALID_INN, "new": OTHER_INN},
        "tags": {"old": [], "new": ["vip"]},
    }
    assert (await client.get(f"{url}/audit?after={created['id']}", headers=me)).json() == [change]

    events = await topic.events_of(org["id"], 2)
    assert [e.type for e in events] == [
        "directory.organization.created",
        "directory.organization.updated",
    ]
    assert events[0].payload["legal_name"] == "Старое имя"
    assert events[0].payload["inn"] == VALID_INN
    event = events[1]
    assert event.payload["version"] == 2
    assert event.payload["changes"] == change["changes"]
    assert event.directions == (direction,)
    assert event.correlation_id == "corr-patch-1"
    assert event.actor is not None
    assert event.actor.subject == "alice"
    await asyncio.sleep(1)  # nothing more comes for it: the no-op and the refused patch
    assert len([e for e in topic.seen if e.aggregate_id == org["id"]]) == 2


async def test_concurrent_patches_with_one_etag_one_wins(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    direction = fresh_direction()
    me = sales(issuer, direction)
    org = await _create(client, me, legal_name="Гонка", directions=[direction])
    url = f"/v1/organizations/{org['id']}"
    for round_ in range(3):
        etag = (await client.get(url, headers=me)).headers["etag"]
        responses = await asyncio.gather(
            *(
                client.patch(
                    url, json={"short_name": f"r{round_}-{i}"}, headers=me | {"If-Match": etag}
                )
                for i in range(4)
            )
        )
        codes = sorted(r.status_code for r in responses)
        assert codes == [200, 412, 412, 412], [r.text for r in responses]
    final = (await client.get(url, headers=me)).json()
    assert final["version"] == 4
    trail = (await client.get(f"{url}/audit", headers=me)).json()
    assert [e["version"] for e in trail] == [1, 2, 3, 4]


async def test_soft_delete_and_restore(
    client: httpx.AsyncClient, issuer: TokenIssuer, tail: Callable[[str], TopicTail]
) -> None:
    topic = await tail(ORGANIZATIONS).start()
    direction, other = fresh_direction(), fresh_direction()
    me = sales(issuer, direction, subject="bob")
    org = await _create(client, me, legal_name="Удаляемая", directions=[direction])
    url = f"/v1/organizations/{org['id']}"

    problem(await client.delete(url, headers=me), 428)
    problem(await client.delete(url, headers=me | {"If-Match": 'W/"7"'}), 412)
    # one may not delete what is shared with a direction one does not belong to
    shared = await _create(client, admin(issuer), legal_name="Общая", directions=[direction, other])
    problem(
        await client.delete(
            f"/v1/organizations/{shared['id']}", headers=me | {"If-Match": 'W/"1"'}
        ),
        403,
    )

    deleted = await client.delete(url, headers=me | {"If-Match": 'W/"1"'})
    assert deleted.status_code == 204, deleted.text
    assert deleted.headers["etag"] == 'W/"2"'
    problem(await client.get(url, headers=me), 404)
    problem(
        await client.patch(url, json={"legal_name": "Z"}, headers=me | {"If-Match": 'W/"2"'}), 404
    )
    problem(await client.delete(url, headers=me | {"If-Match": 'W/"2"'}), 404)
    listed = (await client.get("/v1/organizations", headers=me)).json()
    assert org["id"] not in {o["id"] for o in listed}
    trash = (await client.get("/v1/organizations?deleted=true", headers=me)).json()
    assert [o["id"] for o in trash] == [org["id"]]
    assert trash[0]["deleted_at"] is not None
    seen_deleted = await client.get(f"{url}?include_deleted=true", headers=me)
    assert seen_deleted.status_code == 200
    assert seen_deleted.headers["etag"] == 'W/"2"'

    problem(await client.post(f"{url}/restore", headers=me), 428)
    problem(await client.post(f"{url}/restore", headers=me | {"If-Match": 'W/"1"'}), 412)
    problem(
        await client.post(f"{url}/restore", headers=sales(issuer, other) | {"If-Match": 'W/"2"'}),
        404,
    )
    restored = await client.post(f"{url}/restore", headers=me | {"If-Match": 'W/"2"'})
    assert restored.status_code == 200, restored.text
    assert restored.json()["deleted_at"] is None
    assert restored.headers["etag"] == 'W/"3"'
    problem(await client.post(f"{url}/restore", headers=me | {"If-Match": 'W/"3"'}), 409)
    assert (await client.get(url, headers=me)).status_code == 200

    trail = (await client.get(f"{url}/audit", headers=me)).json()
    assert [(e["action"], e["version"], e["actor_subject"]) for e in trail] == [
        ("created", 1, "bob"),
        ("deleted", 2, "bob"),
        ("restored", 3, "bob"),
    ]
    events = await topic.events_of(org["id"], 3)
    assert [(e.type, e.payload["version"]) for e in events] == [
        ("directory.organization.created", 1),
        ("directory.organization.deleted", 2),
        ("directory.organization.restored", 3),
    ]


async def test_an_update_reaches_the_client_card_in_interactions(
    client: httpx.AsyncClient,
    issuer: TokenIssuer,
    start_service: Callable[..., ServiceProcess],
) -> None:
    interactions = start_service("interactions")
    direction = fresh_direction()
    me = sales(issuer, direction)
    org = await _create(client, me, legal_name="До", inn=VALID_INN, directions=[direction])
    url = f"/v1/organizations/{org['id']}"
    patched = await client.patch(
        url, json={"legal_name": "После", "status": "client"}, headers=me | {"If-Match": 'W/"1"'}
    )
    assert patched.status_code == 200, patched.text
    card_url = f"{interactions.url}/v1/clients/{org['id']}"

    def card_updated() -> bool:
        response = httpx.get(card_url, headers=me)
        return response.status_code == 200 and response.json()["version"] == 2

    await asyncio.to_thread(wait_for, card_updated, 60, "the update to reach the client card")
    card = (await client.get(card_url, headers=me)).json()
    assert (card["legal_name"], card["status"], card["inn"]) == ("После", "client", VALID_INN)


async def test_the_audit_trail_is_append_only(
    client: httpx.AsyncClient, issuer: TokenIssuer, infra: Infrastructure
) -> None:
    direction = fresh_direction()
    org = await _create(
        client, sales(issuer, direction), legal_name="Аудит", directions=[direction]
    )
    conn = await asyncpg.connect(infra.test_database_url("directory"))
    try:
        for statement in (
            "UPDATE audit_log SET actor_subject = 'mallory' WHERE entity_id = $1",
            "DELETE FROM audit_log WHERE entity_id = $1",
        ):
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute(statement, uuid.UUID(org["id"]))
        count = await conn.fetchval(
            "SELECT count(*) FROM audit_log WHERE entity_id = $1", uuid.UUID(org["id"])
        )
    finally:
        await conn.close()
    assert count == 1


async def test_every_change_is_followed_by_the_whole_record_on_the_state_topic(
    client: httpx.AsyncClient, issuer: TokenIssuer, tail: Callable[[str], TopicTail]
) -> None:
    """ADR 18: the created event carries the whole record; each change stages a snapshot."""
    changes = await tail(ORGANIZATIONS).start()
    states = await tail(ORGANIZATIONS_STATE).start()
    direction = fresh_direction()
    me = sales(issuer, direction)
    addresses = {
        "legal_address": {"text": "Москва, ул. Вавилова, 19", "postal_code": "117312"},
        "actual_address": {"text": "Москва, ул. Тверская, 1"},
        "postal_address": {"text": "а/я 7, Москва"},
    }
    org = await _create(
        client,
        me,
        **{**FULL, **addresses, "directions": [direction], "foreign_tax_id": "DE123456789"},
    )
    url = f"/v1/organizations/{org['id']}"
    patched = await client.patch(url, json={"short_name": "Р"}, headers=me | {"If-Match": 'W/"1"'})
    assert patched.status_code == 200, patched.text
    assert (await client.delete(url, headers=me | {"If-Match": 'W/"2"'})).status_code == 204
    restored = await client.post(f"{url}/restore", headers=me | {"If-Match": 'W/"3"'})
    assert restored.status_code == 200, restored.text

    created = (await changes.events_of(org["id"], 1))[0]
    assert created.schema_version == 2
    assert created.payload["foreign_tax_id"] == "DE123456789"
    for name in addresses:
        assert created.payload[name] == org[name]
    snapshots = await states.events_of(org["id"], 4)
    assert {e.type for e in snapshots} == {"directory.organization.state"}
    assert [(e.payload["version"], e.payload["deleted"]) for e in snapshots] == [
        (1, False),
        (2, False),
        (3, True),
        (4, False),
    ]
    revisions = [e.payload["revision"] for e in snapshots]
    assert revisions == sorted(set(revisions))
    last = snapshots[-1].payload
    final = restored.json()
    for name in (*FULL, "foreign_tax_id", *addresses, "attributes", "directions"):
        assert last[name] == final[name], name
    assert last["short_name"] == "Р"
    assert last["blocked"] is False
    assert last["merged_into"] is None


async def test_the_list_pages_by_cursor_beyond_a_page(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    direction = fresh_direction()
    me = sales(issuer, direction)
    names = [f"ООО «Страница {n:02d}»" for n in range(7)] + ["ООО «Страница 03»"]
    for name in names:
        await _create(client, me, legal_name=name, directions=[direction])
    seen: list[str] = []
    url: str | None = "/v1/organizations?limit=3"
    pages = 0
    while url is not None:
        response = await client.get(url, headers=me)
        assert response.status_code == 200, response.text
        seen += [org["legal_name"] for org in response.json()]
        pages += 1
        link = response.headers.get("link")
        url = link.split(">", 1)[0].lstrip("<") if link else None
        if url is not None:
            assert response.headers["x-next-cursor"] in url
    assert seen == sorted(names)
    assert pages == 3

    first = await client.get("/v1/organizations?limit=3", headers=me)
    cursor = first.headers["x-next-cursor"]
    other = await client.get(
        "/v1/organizations", params={"cursor": cursor, "deleted": "true"}, headers=me
    )
    assert problem(other, 422)
    for bad in ("", "not-a-cursor", "\x00", "é" * 3000):
        assert (
            await client.get("/v1/organizations", params={"cursor": bad}, headers=me)
        ).status_code == 422
