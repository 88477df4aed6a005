"""Duplicate persons over real HTTP: candidates by e-mail, phone, name and birthday within the
caller's sight; merging two persons (chosen values, consent never widened, employments moved or
folded, register entries and attribute references moved, the other deleted pointing to the
survivor), its preconditions, races, the direction rule and the events."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.catalog import PERSONS
from clientele_testkit.processes import ServiceProcess
from directory_testkit import TopicTail, admin, bearer, fresh_direction, problem, sales

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(directory: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=directory.url, timeout=30) as http:
        yield http


async def _post(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], **body: Any
) -> dict[str, Any]:
    response = await client.post(url, json=body, headers=headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def _org(client: httpx.AsyncClient, headers: dict[str, str], direction: str) -> str:
    org = await _post(
        client, "/v1/organizations", headers, legal_name=f"Org {direction}", directions=[direction]
    )
    return str(org["id"])


def _merge(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    survivor: dict[str, Any],
    other: dict[str, Any],
    *,
    version: int = 1,
    other_version: int = 1,
    **body: Any,
) -> Any:
    return client.post(
        f"/v1/persons/{survivor['id']}/merge",
        json={"other_id": other["id"], "other_version": other_version, **body},
        headers={**headers, "If-Match": f'W/"{version}"'},
    )


async def test_merge_moves_everything_to_the_survivor_and_tells_the_other_services(
    client: httpx.AsyncClient, issuer: TokenIssuer, tail: Callable[[str], TopicTail]
) -> None:
    north = fresh_direction()
    me, root = sales(issuer, north), admin(issuer)
    bank, shop = await _org(client, me, north), await _org(client, me, north)
    key = f"contact_{uuid.uuid4().hex[:8]}"
    definition = await _post(
        client,
        "/v1/attributes",
        root,
        entity_kind="organization",
        key=key,
        label="Контакт",
        type="reference",
        reference_kind="person",
    )
    try:
        survivor = await _post(
            client,
            "/v1/persons",
            me,
            last_name="Петров",
            first_name="Пётр",
            emails=["petr@x.example"],
            consent={"email": True, "sms": True},
            directions=[north],
            employments=[{"organization_id": bank, "position": "Директор"}],
        )
        other = await _post(
            client,
            "/v1/persons",
            me,
            last_name_latin="Petrov",
            first_name_latin="Petr",
            birthday="1980-05-01",
            emails=["p.petrov@y.example", "PETR@x.example"],
            consent={"email": False, "sms": True, "phone": True},
            employments=[
                {
                    "organization_id": bank,
                    "position": "директор",
                    "department": "Правление",
                    "since": "2019-01-01",
                },
                {"organization_id": shop, "position": "Консультант"},
            ],
        )
        holder = await _post(
            client,
            "/v1/organizations",
            me,
            legal_name="Клиент",
            directions=[north],
            attributes={key: other["id"]},
        )
        officer = bearer(issuer, "sec", roles=["security_officer"])
        await _post(
            client,
            "/v1/unwanted",
            officer,
            person_id=other["id"],
            reason="Мошенник",
            decided_by="СБ",
        )
        events = await tail(PERSONS).start()
        url = f"/v1/persons/{survivor['id']}/merge"
        body = {"other_id": other["id"], "other_version": 1}

        problem(await client.post(url, json=body, headers=me), 428)
        stale = problem(await _merge(client, me, survivor, other, version=7), 412)
        assert stale["current_version"] == 1
        problem(await _merge(client, me, survivor, other, other_version=3), 409)
        problem(await _merge(client, me, survivor, survivor), 409)
        wrong = await _merge(client, me, survivor, other, take=["employments"])
        assert problem(wrong, 422)["errors"][0]["location"] == ["body", "employments"]
        bad = await _merge(client, me, survivor, other, values={"emails": ["nope"]})
        problem(bad, 422)
        bad = await _merge(client, me, survivor, other, values={"attributes": {"nope": 1}})
        problem(bad, 422)

        merged = await _merge(client, me, survivor, other, values={"middle_name": "Ильич"})
        assert merged.status_code == 200, merged.text
        assert merged.headers["etag"] == 'W/"2"'
        result = merged.json()
        person = result["survivor"]
        assert (person["last_name"], person["first_name"]) == ("Петров", "Пётр")  # kept
        assert (person["last_name_latin"], person["birthday"]) == ("Petrov", "1980-05-01")
        assert person["middle_name"] == "Ильич"
        assert person["emails"] == ["petr@x.example", "p.petrov@y.example"]
        assert person["consent"] == {"email": False, "sms": True, "phone": False}
        assert person["blocked"] is True  # the register entry came with him
        assert result["merged_id"] == other["id"]
        assert (
            result["employments_moved"],
            result["employments_folded"],
            result["register_entries_moved"],
            result["references_moved"],
        ) == (1, 1, 1, 1)
        jobs = {j["organization_id"]: j for j in person["employments"]}
        assert set(jobs) == {bank, shop}
        kept = survivor["employments"][0]
        assert jobs[bank]["id"] == kept["id"]  # the other's job at the bank folded into it
        assert (jobs[bank]["department"], jobs[bank]["since"]) == ("Правление", "2019-01-01")
        assert jobs[bank]["position"] == "Директор"

        # the merged one: gone, pointing at the survivor, neither restored nor merged again
        gone_url = f"/v1/persons/{other['id']}"
        assert problem(await client.get(gone_url, headers=me), 404)["merged_into"] == survivor["id"]
        gone = await client.get(f"{gone_url}?include_deleted=true", headers=me)
        assert gone.json()["merged_into"] == survivor["id"]
        assert gone.json()["employments"] == []
        restore = await client.post(
            f"{gone_url}/restore", headers={**me, "If-Match": gone.headers["etag"]}
        )
        assert problem(restore, 409)["merged_into"] == survivor["id"]
        again = await _merge(client, me, survivor, other, version=2, other_version=2)
        assert problem(again, 409)["merged_into"] == survivor["id"]
        referred = await client.get(f"/v1/organizations/{holder['id']}", headers=me)
        assert referred.json()["attributes"][key] == survivor["id"]

        trail = (await client.get(f"/v1/persons/{survivor['id']}/audit", headers=me)).json()
        actions = [(e["entity_kind"], e["action"]) for e in trail]
        assert ("person", "merged") in actions
        assert actions[-1] == ("person", "blocked")
        assert ("employment", "moved") in actions  # the moved job's history came along
        merged_entry = next(e for e in trail if e["action"] == "merged")
        assert merged_entry["changes"]["consent"]["new"]["email"] is False
        other_trail = (await client.get(f"{gone_url}/audit", headers=me)).json()
        assert other_trail[-1]["action"] == "merged_into"

        event = await events.wait_for(lambda e: e.type == "directory.person.merged")
        assert event.aggregate_id == survivor["id"]
        assert event.payload["merged_id"] == other["id"]
        assert event.payload["survivor_version"] == 2
        assert event.payload["merged_version"] == 2
        assert event.payload["changes"]["birthday"] == {"old": None, "new": "1980-05-01"}
        moved = {e["organization_id"]: e for e in event.payload["employments"]}
        assert moved[bank]["merged_into"] == kept["id"]
        assert moved[shop]["merged_into"] is None
        assert moved[shop]["employment_id"] == jobs[shop]["id"]
        assert north in event.directions
        await events.wait_for(
            lambda e: e.type == "directory.person.deleted" and e.aggregate_id == other["id"]
        )
        # the re-pointed job is announced under the survivor (the tail may also see the
        # other's earlier events of that job, published by the relay just after it started)
        repointed = await events.wait_for(
            lambda e: (
                e.type == "directory.employment.changed"
                and e.payload["employment_id"] == jobs[shop]["id"]
                and e.aggregate_id == survivor["id"]
            )
        )
        assert repointed.payload["changes"]["person_id"]["old"] == other["id"]
        await events.wait_for(
            lambda e: e.type == "directory.person.blocked" and e.aggregate_id == survivor["id"]
        )
    finally:
        archived = await client.delete(
            f"/v1/attributes/{definition['id']}", headers={**root, "If-Match": 'W/"1"'}
        )
        assert archived.status_code == 200, archived.text


async def test_another_direction_cannot_merge_whom_it_cannot_see_or_write(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north, south = fresh_direction(), fresh_direction()
    northern, southern = sales(issuer, north), sales(issuer, south)
    both, root = sales(issuer, north, south), admin(issuer)
    south_org = await _org(client, southern, south)
    name = f"Альфа{uuid.uuid4().hex[:8]}"
    a = await _post(client, "/v1/persons", northern, last_name=name, directions=[north])
    b = await _post(client, "/v1/persons", southern, last_name="Б", directions=[south])
    shared = await _post(client, "/v1/persons", both, last_name="В", directions=[north, south])
    # the other is invisible, or the survivor is: 404 like a missing one
    problem(await _merge(client, northern, a, b), 404)
    problem(await _merge(client, northern, b, a), 404)
    problem(await _merge(client, northern, a, {"id": str(uuid.uuid4())}), 404)
    # visible, but also in a direction he does not belong to: 403
    problem(await _merge(client, northern, a, shared), 403)
    problem(await _merge(client, northern, shared, a), 403)
    # nor may he put the survivor into another direction
    e = await _post(client, "/v1/persons", northern, last_name="Д", directions=[north])
    problem(await _merge(client, northern, a, e, values={"directions": [north, south]}), 403)
    for person in (a, b, shared):
        still = await client.get(f"/v1/persons/{person['id']}", headers=root)
        assert still.json()["version"] == 1
    # a southern job of the merged person moves too, though the north never sees it
    c = await _post(
        client,
        "/v1/persons",
        root,
        last_name="Г",
        directions=[north],
        employments=[{"organization_id": south_org, "position": "Бухгалтер"}],
    )
    merged = await _merge(client, northern, a, c)
    assert merged.status_code == 200, merged.text
    assert merged.json()["survivor"]["employments"] == []
    assert merged.json()["employments_moved"] == 1
    seen_south = await client.get(f"/v1/persons/{a['id']}", headers=southern)
    assert [j["organization_id"] for j in seen_south.json()["employments"]] == [south_org]
    # the merged one is a plain 404 for whoever does not see the survivor either
    other_dir = sales(issuer, fresh_direction())
    gone = problem(await client.get(f"/v1/persons/{c['id']}", headers=other_dir), 404)
    assert "merged_into" not in gone
    # candidates: the north does not learn of the south's people, the admin does
    twin = await _post(client, "/v1/persons", southern, last_name=name, directions=[south])
    north_view = await client.get(f"/v1/persons/{a['id']}/duplicates", headers=northern)
    assert north_view.status_code == 200, north_view.text
    assert twin["id"] not in [c["person"]["id"] for c in north_view.json()]
    problem(await client.get(f"/v1/persons/{a['id']}/duplicates", headers=other_dir), 404)
    admin_view = await client.get(
        f"/v1/persons/{a['id']}/duplicates", params={"limit": 50}, headers=root
    )
    assert twin["id"] in [c["person"]["id"] for c in admin_view.json()]


async def test_racing_merges_of_one_pair_leave_one_merge_and_stale_writes_fail(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north = fresh_direction()
    me = sales(issuer, north)
    a = await _post(client, "/v1/persons", me, last_name="Один", directions=[north])
    b = await _post(client, "/v1/persons", me, last_name="Два", directions=[north])
    answers = await asyncio.gather(_merge(client, me, a, b), _merge(client, me, b, a))
    codes = sorted(response.status_code for response in answers)
    assert codes[0] == 200, [r.text for r in answers]
    assert codes[1] in (409, 412), [r.text for r in answers]
    winner = next(r.json() for r in answers if r.status_code == 200)
    survivor = winner["survivor"]
    listed = await client.get("/v1/persons", headers=me)
    assert [p["id"] for p in listed.json()] == [survivor["id"]]
    # a patch made from the version read before the merge is stale now
    stale = await client.patch(
        f"/v1/persons/{survivor['id']}",
        json={"first_name": "Иван"},
        headers={**me, "If-Match": 'W/"1"'},
    )
    assert problem(stale, 412)["current_version"] == 2


async def test_an_organization_merge_and_a_person_merge_over_shared_employments_both_land(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north = fresh_direction()
    me = sales(issuer, north)
    for _ in range(6):
        kept_org, gone_org = await _org(client, me, north), await _org(client, me, north)
        # the other person's employment at the merged organization is written first, so the
        # organization merge meets it first and the person merge last
        gone = await _post(
            client,
            "/v1/persons",
            me,
            last_name="Второй",
            employments=[
                {"organization_id": gone_org, "position": "Бухгалтер"},
                {"organization_id": kept_org, "position": "Аудитор"},
            ],
        )
        kept = await _post(
            client,
            "/v1/persons",
            me,
            last_name="Первый",
            employments=[{"organization_id": gone_org, "position": "Директор"}],
        )
        org_merge, person_merge = await asyncio.gather(
            client.post(
                f"/v1/organizations/{kept_org}/merge",
                json={"other_id": gone_org, "other_version": 1},
                headers={**me, "If-Match": 'W/"1"'},
            ),
            _merge(client, me, kept, gone),
        )
        assert (org_merge.status_code, person_merge.status_code) == (200, 200), (
            org_merge.text,
            person_merge.text,
        )
        person = await client.get(f"/v1/persons/{kept['id']}", headers=me)
        jobs = person.json()["employments"]
        assert sorted(job["position"] for job in jobs) == ["Аудитор", "Бухгалтер", "Директор"]
        assert {job["organization_id"] for job in jobs} == {kept_org}


async def test_ugly_merges_are_refused_or_kept_whole(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north = fresh_direction()
    me, root = sales(issuer, north), admin(issuer)
    officer = bearer(issuer, "sec", roles=["security_officer"])
    a, b, c = [
        await _post(client, "/v1/persons", me, last_name=name, directions=[north])
        for name in ("Первый", "Второй", "Третий")
    ]
    # nobody would see the result: refused, nothing written
    orphan = await _merge(client, me, a, b, values={"directions": []})
    error = problem(orphan, 422)["errors"][0]
    assert (error["type"], error["location"]) == ("orphan", ["body", "values", "directions"])
    for person in (a, b):
        assert (await client.get(f"/v1/persons/{person['id']}", headers=me)).json()["version"] == 1
    # both listed: the survivor keeps one active entry, the other's is closed and moved
    entries = [
        await _post(
            client, "/v1/unwanted", officer, person_id=p["id"], reason="Долг", decided_by="СБ"
        )
        for p in (a, b)
    ]
    merged = await _merge(client, me, a, b)
    assert merged.status_code == 200, merged.text
    closed = (await client.get(f"/v1/unwanted/{entries[1]['id']}", headers=officer)).json()
    assert (closed["person_id"], closed["removed_at"] is not None) == (a["id"], True)
    # a chain: what was merged into the merged one points at the last survivor
    merged = await _merge(client, me, c, a, other_version=2)
    assert merged.status_code == 200, merged.text
    first = problem(await client.get(f"/v1/persons/{b['id']}", headers=me), 404)
    assert first["merged_into"] == c["id"]
    # a deleted person is missing for a merge
    d = await _post(client, "/v1/persons", me, last_name="Четвёртый", directions=[north])
    deleted = await client.delete(f"/v1/persons/{d['id']}", headers={**me, "If-Match": 'W/"1"'})
    assert deleted.status_code == 204
    problem(await _merge(client, me, c, d, version=2, other_version=2), 404)
    # a merged person is no candidate, and asking about him names the survivor
    dupes = await client.get(f"/v1/persons/{c['id']}/duplicates", headers=root)
    assert {a["id"], b["id"]}.isdisjoint(x["person"]["id"] for x in dupes.json())
    asked = problem(await client.get(f"/v1/persons/{a['id']}/duplicates", headers=me), 404)
    assert asked["merged_into"] == c["id"]


async def test_duplicate_candidates_by_email_phone_name_and_birthday(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north = fresh_direction()
    me = sales(issuer, north)
    org = await _org(client, me, north)
    tag = uuid.uuid4().hex[:6]
    email = f"Anna.{tag}@Example.org"

    async def person(**fields: Any) -> str:
        created = await _post(client, "/v1/persons", me, directions=[north], **fields)
        return str(created["id"])

    target = await person(
        last_name="Смирнова",
        first_name="Анна",
        emails=[email],
        phones=["+7 912 345-67-89"],
        birthday="1985-02-03",
    )
    latin = await person(last_name_latin="Smirnova", first_name_latin="Anna", birthday="1985-02-03")
    by_email = await person(last_name="Соколов", emails=[email.lower()])
    by_work_email = await person(
        last_name="Кузнецов", employments=[{"organization_id": org, "emails": [email.upper()]}]
    )
    by_phone = await person(last_name="Иванов", phones=["8 (912) 345-67-89"])
    namesake = await person(last_name="Смирнова", first_name="Анна", birthday="1990-01-01")
    typo = await person(last_name="Смирнова", first_name="Ана")
    await person(last_name="Петров", first_name="Пётр", phones=["+7 912 345-67-89 ext. 12"])

    response = await client.get(
        f"/v1/persons/{target}/duplicates", params={"limit": 50}, headers=me
    )
    assert response.status_code == 200, response.text
    found = {c["person"]["id"]: c for c in response.json()}
    assert set(found) == {latin, by_email, by_work_email, by_phone, namesake, typo}
    assert found[latin]["matched_by"] == ["name", "birthday"]
    assert found[latin]["name_similarity"] == 1.0
    assert found[by_email]["matched_by"] == ["email"]
    assert found[by_work_email]["matched_by"] == ["email"]
    assert found[by_work_email]["person"]["employments"][0]["organization_id"] == org
    assert found[by_phone]["matched_by"] == ["phone"]
    assert found[namesake]["birthday"] == "different"
    assert "name" in found[typo]["matched_by"]
    order = [c["person"]["id"] for c in response.json()]
    assert order.index(latin) < order.index(namesake)  # a different birthday ranks lower
    assert order[:3] == sorted(order[:3], key=lambda i: -found[i]["score"])

    same_day = await client.get(
        f"/v1/persons/{target}/duplicates", params={"same_birthday": "true"}, headers=me
    )
    assert [c["person"]["id"] for c in same_day.json()] == [latin]
    one = await client.get(f"/v1/persons/{target}/duplicates", params={"limit": 1}, headers=me)
    assert len(one.json()) == 1
    problem(
        await client.get(f"/v1/persons/{target}/duplicates", params={"limit": 0}, headers=me), 422
    )
    problem(await client.get(f"/v1/persons/{uuid.uuid4()}/duplicates", headers=me), 404)
