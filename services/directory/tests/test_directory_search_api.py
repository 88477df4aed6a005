"""Search over real HTTP: typo-tolerant text, phones, people, filters, Cyrillic order, cursors,
and the direction rule (another direction's principal finds nothing)."""

from __future__ import annotations

import random
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


async def _org(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    response = await client.post("/v1/organizations", json=fields, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _search(
    client: httpx.AsyncClient, headers: dict[str, str], **body: Any
) -> dict[str, Any]:
    response = await client.post("/v1/organizations/search", json=body, headers=headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def _names(page: dict[str, Any]) -> list[str]:
    return [item["legal_name"] for item in page["items"]]


async def test_text_search_tolerates_typos_and_reads_phones_inn_emails_people(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north, south = fresh_direction(), fresh_direction()
    mine, theirs = sales(issuer, north), sales(issuer, south)
    inn = fresh_inn()
    romashka = await _org(
        client,
        mine,
        legal_name="ООО «Ромашка»",
        inn=inn,
        phones=["+7 495 500-55-50"],
        emails=["sales@romashka.example"],
        directions=[north],
    )
    await _org(client, mine, legal_name="АО «Ёлка и Ко»", directions=[north])
    await _org(client, theirs, legal_name="ООО «Ромашка» Юг", directions=[south])
    person = await client.post(
        "/v1/persons",
        json={
            "last_name": "Иванов",
            "first_name": "Пётр",
            "employments": [{"organization_id": romashka["id"], "position": "Директор"}],
        },
        headers=mine,
    )
    assert person.status_code == 201, person.text

    for q in (
        "ромошка",
        "РОМАШКА",
        inn,
        "8 (495) 500-55-50",
        "500-55-50",
        "sales@romashka",
        "Петр",
    ):
        page = await _search(client, mine, filter={"q": q})
        assert _names(page) == ["ООО «Ромашка»"], q
    assert _names(await _search(client, mine, filter={"q": "елка"})) == ["АО «Ёлка и Ко»"]
    assert _names(await _search(client, mine, filter={"q": "100%_"})) == []
    # the other direction finds only its own, never ours
    assert _names(await _search(client, theirs, filter={"q": "ромашка"})) == ["ООО «Ромашка» Юг"]
    assert _names(await _search(client, theirs, filter={"q": inn})) == []
    assert _names(await _search(client, theirs, filter={"q": "Иванов"})) == []
    assert _names(await _search(client, sales(issuer), filter={"q": "ромашка"})) == []
    people = await client.post("/v1/persons/search", json={"q": "иванов петр"}, headers=mine)
    assert [p["last_name"] for p in people.json()["items"]] == ["Иванов"]
    people = await client.post("/v1/persons/search", json={"q": "иванов петр"}, headers=theirs)
    assert people.json()["items"] == []


async def test_filters_combine_with_text(client: httpx.AsyncClient, issuer: TokenIssuer) -> None:
    north = fresh_direction()
    mine = sales(issuer, north)
    await _org(client, mine, legal_name="Альфа", status="client", tags=["vip"], directions=[north])
    await _org(client, mine, legal_name="Альфа-2", status="prospect", directions=[north])
    blocked = await _org(
        client, mine, legal_name="Альфа-3", inn=fresh_inn(), industry="Банки", directions=[north]
    )
    entry = await client.post(
        "/v1/unwanted",
        json={"inn": blocked["inn"], "reason": "Споры", "decided_by": "СБ"},
        headers=admin(issuer),
    )
    assert entry.status_code == 201, entry.text
    assert _names(await _search(client, mine, filter={"q": "альфа", "status": ["client"]})) == [
        "Альфа"
    ]
    assert _names(await _search(client, mine, filter={"tags": ["vip", "x"]})) == ["Альфа"]
    assert _names(await _search(client, mine, filter={"blocked": True})) == ["Альфа-3"]
    assert _names(await _search(client, mine, filter={"industry": ["Банки"]})) == ["Альфа-3"]
    assert _names(await _search(client, mine, filter={"blocked": False, "q": "альфа"})) == [
        "Альфа",
        "Альфа-2",
    ]
    outside = await _search(client, mine, filter={"directions": [fresh_direction()]})
    assert outside["items"] == []
    bad = await client.post(
        "/v1/organizations/search", json={"filter": {"status": ["lost"]}}, headers=mine
    )
    problem(bad, 422)
    bad = await client.post(
        "/v1/organizations/search", json={"filter": {"q": "a\u0000b"}}, headers=mine
    )
    problem(bad, 422)
    bad = await client.post("/v1/organizations/search", json={"sort": "relevance"}, headers=mine)
    problem(bad, 422)


async def test_name_order_is_cyrillic_aware_and_cursors_page_through(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north = fresh_direction()
    mine = sales(issuer, north)
    for name in ("Жук", "Ёлка", "Дуб", "Apple", "Ель", "Ясень", "Берёза"):
        await _org(client, mine, legal_name=name, directions=[north])
    everything = _names(await _search(client, mine, limit=100))
    assert everything == ["Apple", "Берёза", "Дуб", "Ёлка", "Ель", "Жук", "Ясень"]
    backwards = _names(await _search(client, mine, sort="-name", limit=100))
    assert backwards == everything[::-1]

    for sort, expected in (("name", everything), ("-name", everything[::-1])):
        seen: list[str] = []
        cursor = None
        while True:
            page = await _search(client, mine, sort=sort, limit=3, cursor=cursor)
            seen += _names(page)
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == expected
    created = await _search(client, mine, sort="created", limit=4)
    rest = await _search(client, mine, sort="created", limit=4, cursor=created["next_cursor"])
    assert len(_names(created) + _names(rest)) == 7
    assert rest["next_cursor"] is None

    first = await _search(client, mine, filter={"q": "е"}, sort="relevance", limit=1)
    assert first["next_cursor"]
    again = await _search(
        client, mine, filter={"q": "е"}, sort="relevance", limit=1, cursor=first["next_cursor"]
    )
    assert _names(again) != _names(first)

    page = await _search(client, mine, limit=2)
    wrong = await client.post(
        "/v1/organizations/search",
        json={"limit": 2, "filter": {"q": "жук"}, "cursor": page["next_cursor"]},
        headers=mine,
    )
    assert "another query" in problem(wrong, 422)["errors"][0]["message"]
    for garbage in ("abc", "!!", "eyJ2IjoxLCJzIjoibmFtZSIsImsiOlsxLDJdLCJmIjoieCJ9"):
        response = await client.post(
            "/v1/organizations/search", json={"cursor": garbage}, headers=mine
        )
        problem(response, 422)


def _word() -> str:
    """A made-up Cyrillic word no other test uses (the search vocabulary is shared)."""
    return "".join(random.choice("бвгдклмнпрстфхч") + random.choice("аеиоу") for _ in range(4))


def _typo(word: str) -> str:
    return word[:3] + ("ы" if word[3] != "ы" else "э") + word[4:]


async def test_typos_are_found_through_the_words_of_what_is_written_now(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north = fresh_direction()
    mine, theirs = sales(issuer, north), sales(issuer, fresh_direction())
    old, new, surname = _word(), _word(), _word()
    created = await client.post(
        "/v1/organizations",
        json={"legal_name": f"ООО «{old.capitalize()}»", "directions": [north]},
        headers=mine,
    )
    assert created.status_code == 201, created.text
    org = created.json()
    assert _names(await _search(client, mine, filter={"q": _typo(old)})) == [org["legal_name"]]
    renamed = await client.patch(
        f"/v1/organizations/{org['id']}",
        json={"legal_name": f"АО «{new.capitalize()}»"},
        headers={**mine, "If-Match": created.headers["etag"]},
    )
    assert renamed.status_code == 200, renamed.text
    assert _names(await _search(client, mine, filter={"q": _typo(new)})) == [
        f"АО «{new.capitalize()}»"
    ]
    assert _names(await _search(client, mine, filter={"q": _typo(old)})) == []
    person = await client.post(
        "/v1/persons",
        json={
            "last_name": surname.capitalize(),
            "employments": [{"organization_id": org["id"], "position": "Директор"}],
        },
        headers=mine,
    )
    assert person.status_code == 201, person.text
    through_people = await _search(client, mine, filter={"q": _typo(surname)})
    assert _names(through_people) == [f"АО «{new.capitalize()}»"]
    assert _names(await _search(client, theirs, filter={"q": _typo(new)})) == []
    assert _names(await _search(client, theirs, filter={"q": _typo(surname)})) == []


async def test_a_term_found_as_written_gets_no_other_spellings(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    """Typo'd spellings are looked for only when no word holds the term as written."""
    north = fresh_direction()
    mine = sales(issuer, north)
    word = _word()
    near = _typo(word)
    for name in (word, near):
        await _org(client, mine, legal_name=f"ООО «{name.capitalize()}»", directions=[north])
    assert _names(await _search(client, mine, filter={"q": word})) == [f"ООО «{word.capitalize()}»"]
    mistyped = word[:3] + ("э" if word[3] != "э" else "ю") + word[4:]
    assert sorted(_names(await _search(client, mine, filter={"q": mistyped}))) == sorted(
        f"ООО «{name.capitalize()}»" for name in (word, near)
    )


async def test_text_search_by_name_finds_organizations_too_large_for_the_name_index(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    """A search by name reads a covering index that holds only organizations whose document is
    small enough; one with fifty e-mails is searched apart and merged into the same order."""
    north = fresh_direction()
    mine, theirs = sales(issuer, north), sales(issuer, fresh_direction())
    word = _word()
    emails = [f"manager.number{n}@{_latin(word)}-trading-company.example" for n in range(50)]
    for name, extra in (
        (f"А {word}", {}),
        (f"Б {word}", {"emails": emails, "status": "client"}),
        (f"В {word}", {"status": "client"}),
        (f"Г {word}", {}),
    ):
        await _org(client, mine, legal_name=name, directions=[north], **extra)
    names = [f"{letter} {word}" for letter in "АБВГ"]
    for sort, expected in (("name", names), ("-name", names[::-1])):
        seen: list[str] = []
        cursor = None
        while True:
            page = await _search(
                client, mine, filter={"q": word}, sort=sort, limit=1, cursor=cursor
            )
            seen += _names(page)
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == expected
    clients = await _search(client, mine, filter={"q": word, "status": ["client"]})
    assert _names(clients) == [f"Б {word}", f"В {word}"]
    by_email = await _search(client, mine, filter={"q": f"number49@{_latin(word)}"})
    assert _names(by_email) == [f"Б {word}"]
    assert _names(await _search(client, theirs, filter={"q": word})) == []


def _latin(word: str) -> str:
    return word.translate(str.maketrans("бвгдклмнпрстфхчаеиоуыэ", "bvgdklmnprstfhcaeiouye"))
