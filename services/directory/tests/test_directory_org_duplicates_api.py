"""Duplicate candidates of an organization over real HTTP: the same INN, a shared e-mail, a
shared phone, a similar name without its legal form, ranked; only live organizations the caller
sees; 404 for one he does not see; bad limits."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_testkit.processes import ServiceProcess
from directory_testkit import admin, fresh_direction, fresh_inn, problem, sales

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(directory: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=directory.url, timeout=30) as http:
        yield http


def _phone() -> tuple[str, str]:
    """One fresh Moscow number, written two ways."""
    digits = f"{random.randrange(10**7):07d}"
    return f"+7 495 {digits}", f"8 (495) {digits[:3]}-{digits[3:5]}-{digits[5:]}"


async def _org(
    client: httpx.AsyncClient, headers: dict[str, str], direction: str, **fields: Any
) -> str:
    response = await client.post(
        "/v1/organizations", json={"directions": [direction], **fields}, headers=headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _duplicates(
    client: httpx.AsyncClient, org_id: str, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    response = await client.get(
        f"/v1/organizations/{org_id}/duplicates", params=params, headers=headers
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def _ids(candidates: list[dict[str, Any]]) -> list[str]:
    return [c["organization"]["id"] for c in candidates]


async def test_candidates_by_inn_email_phone_and_name_ranked(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north = fresh_direction()
    me = sales(issuer, north)
    inn, email = fresh_inn(), f"info.{uuid.uuid4().hex[:8]}@lyutik.example"
    phone, same_phone = _phone()
    target = await _org(
        client,
        me,
        north,
        legal_name="ООО «Лютик Цветы»",
        inn=inn,
        emails=[email],
        phones=[phone],
    )
    twin = await _org(client, me, north, legal_name="Лютик Цветы", inn=inn)
    by_inn = await _org(client, me, north, legal_name="Северный ветер", inn=inn)
    by_email = await _org(client, me, north, legal_name="Глобус Плюс", emails=[email])
    by_phone = await _org(client, me, north, legal_name="Мир стекла", phones=[same_phone])
    by_name = await _org(client, me, north, legal_name="АО Лютик Цветы")
    typo = await _org(client, me, north, legal_name="Лютик-Цвет")
    # two INNs are two companies, whatever the name; nothing shared is no candidate
    await _org(client, me, north, legal_name="Лютик Цветы", inn=fresh_inn())
    await _org(client, me, north, legal_name="Одуванчик", emails=["other@lyutik.example"])

    found = await _duplicates(client, target, me, limit=50)
    by_id = {c["organization"]["id"]: c for c in found}
    assert set(by_id) == {twin, by_inn, by_email, by_phone, by_name, typo}
    assert by_id[twin]["matched_by"] == ["inn", "name"]
    assert by_id[twin]["name_similarity"] == 1.0
    assert by_id[twin]["score"] == 3.0
    assert by_id[by_inn]["matched_by"] == ["inn"]
    assert by_id[by_email]["matched_by"] == ["email"]
    assert by_id[by_phone]["matched_by"] == ["phone"]
    assert by_id[by_name]["matched_by"] == ["name"]
    assert by_id[by_name]["name_similarity"] == 1.0  # «ООО»/«АО» and quotes aside
    assert by_id[typo]["matched_by"] == ["name"]
    assert 0.5 <= by_id[typo]["name_similarity"] < 1.0
    order = _ids(found)
    assert order[0] == twin
    assert set(order[1:4]) == {by_inn, by_email, by_phone}
    assert order[4:] == [by_name, typo]
    assert [c["score"] for c in found] == sorted((c["score"] for c in found), reverse=True)

    assert _ids(await _duplicates(client, target, me, limit=2)) == order[:2]
    for bad in (0, 51, "many"):
        problem(
            await client.get(
                f"/v1/organizations/{target}/duplicates", params={"limit": bad}, headers=me
            ),
            422,
        )
    problem(await client.get(f"/v1/organizations/{uuid.uuid4()}/duplicates", headers=me), 404)


async def test_candidates_stay_within_the_callers_directions(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north, south = fresh_direction(), fresh_direction()
    northern, southern, root = sales(issuer, north), sales(issuer, south), admin(issuer)
    both = sales(issuer, north, south)
    inn = fresh_inn()
    target = await _org(client, northern, north, legal_name="Гвоздика", inn=inn)
    foreign = await _org(client, southern, south, legal_name="Гвоздика")
    foreign_inn = await _org(client, southern, south, legal_name="Тюльпан", inn=inn)
    shared = await _org(
        client, both, north, legal_name="ИП Гвоздика", inn=inn, directions=[north, south]
    )

    assert _ids(await _duplicates(client, target, northern)) == [shared]
    problem(await client.get(f"/v1/organizations/{target}/duplicates", headers=southern), 404)
    assert set(_ids(await _duplicates(client, target, root, limit=50))) >= {
        foreign,
        foreign_inn,
        shared,
    }


async def test_deleted_and_merged_organizations_are_not_offered(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north = fresh_direction()
    me = sales(issuer, north)
    email = f"office.{uuid.uuid4().hex[:8]}@astra.example"
    target = await _org(client, me, north, legal_name="Астра", emails=[email])
    survivor = await _org(client, me, north, legal_name="Ирис", emails=[email])
    merged = await _org(client, me, north, legal_name="Нарцисс", emails=[email])
    deleted = await _org(client, me, north, legal_name="Пион", emails=[email])
    assert set(_ids(await _duplicates(client, target, me))) == {survivor, merged, deleted}

    response = await client.post(
        f"/v1/organizations/{survivor}/merge",
        json={"other_id": merged, "other_version": 1},
        headers={**me, "If-Match": 'W/"1"'},
    )
    assert response.status_code == 200, response.text
    response = await client.delete(
        f"/v1/organizations/{deleted}", headers={**me, "If-Match": 'W/"1"'}
    )
    assert response.status_code == 204, response.text

    assert _ids(await _duplicates(client, target, me)) == [survivor]
    problem(await client.get(f"/v1/organizations/{merged}/duplicates", headers=me), 404)
    problem(await client.get(f"/v1/organizations/{deleted}/duplicates", headers=me), 404)
