"""The client summary: built from read models fed by the directory's events, filtered by the
caller's directions, cached in Redis and invalidated by events."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from clientele_shared.events.catalog import ORGANIZATIONS, PERSONS
from clientele_shared.events.schemas.base import FieldChange
from clientele_shared.events.schemas.directory import (
    EmploymentChanged,
    OrganizationUpdated,
    PersonCreated,
    PersonUpdated,
)
from clientele_testkit.processes import wait_for
from interactions_testkit import Stack, bearer, directory_envelope, publish
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

pytestmark = pytest.mark.integration


def _summary(
    stack: Stack, org: uuid.UUID, headers: dict[str, str], **params: int
) -> httpx.Response:
    return httpx.get(f"{stack.url}/v1/clients/{org}/summary", headers=headers, params=params)


def _person_events(org: uuid.UUID, direction: str) -> tuple[uuid.UUID, list[object]]:
    person = uuid.uuid4()
    created = PersonCreated(
        person_id=person,
        last_name="Иванова",
        first_name="Мария",
        middle_name="Петровна",
        emails=["Maria.Ivanova@Example.RU"],
        phones=[{"number": "+74951234567", "kind": "mobile", "extension": None}],
        directions=[direction],
    )
    employment = EmploymentChanged(
        employment_id=uuid.uuid4(),
        person_id=person,
        organization_id=org,
        change="created",
        version=1,
        position="Финансовый директор",
        emails=["m.ivanova@client.example"],
    )
    return person, [
        directory_envelope("directory.person.created", created, person, [direction]),
        directory_envelope("directory.employment.changed", employment, person, [direction]),
    ]


def test_directory_events_update_the_cached_summary(
    stack: Stack, direction: str, employee: uuid.UUID
) -> None:
    org = stack.client([direction], legal_name="ООО «Старое имя»")
    sales = bearer(stack.issuer, "alice", directions=[direction])
    for hours in (3, 2, 1):
        httpx.post(
            f"{stack.url}/v1/interactions",
            json={
                "organization_id": str(org),
                "kind": "call",
                "subject": f"Call {hours}",
                "occurred_at": (datetime.now(UTC) - timedelta(hours=hours)).isoformat(),
            },
            headers=sales,
        ).raise_for_status()
    httpx.post(
        f"{stack.url}/v1/interactions",
        json={
            "organization_id": str(org),
            "kind": "meeting",
            "status": "planned",
            "due_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
            "responsible_employee_id": str(employee),
            "subject": "Contract signing",
        },
        headers=sales,
    ).raise_for_status()

    first = _summary(stack, org, sales, last=2)
    assert first.status_code == 200, first.text
    assert first.headers["x-cache"] == "miss"
    body = first.json()
    assert body["card"]["legal_name"] == "ООО «Старое имя»"
    assert [i["subject"] for i in body["last_interactions"]] == ["Call 1", "Call 2"]
    assert [p["subject"] for p in body["next_planned"]] == ["Contract signing"]
    assert body["next_planned"][0]["overdue"] is False
    assert body["people"] == []
    assert body["open_deals"] == body["campaigns"] == body["erp_documents"] == []
    again = _summary(stack, org, sales, last=2)
    assert again.headers["x-cache"] == "hit"
    assert again.json()["last_interactions"] == body["last_interactions"]

    # a person and their position arrive from the directory: the cached summary is invalidated
    person, events = _person_events(org, direction)
    publish(stack.bootstrap, PERSONS, *events)  # type: ignore[arg-type]
    wait_for(
        lambda: bool(_summary(stack, org, sales, last=2).json()["people"]),
        60,
        "the person to reach the summary",
    )
    people = _summary(stack, org, sales, last=2).json()["people"]
    assert people[0]["person_id"] == str(person)
    assert people[0]["full_name"] == "Иванова Мария Петровна"
    assert people[0]["position"] == "Финансовый директор"
    assert people[0]["emails"] == ["m.ivanova@client.example", "maria.ivanova@example.ru"]

    # a change of the person is seen at once too
    renamed = PersonUpdated(
        person_id=person,
        version=2,
        changes={"last_name": FieldChange(old="Иванова", new="Петрова")},
    )
    publish(
        stack.bootstrap,
        PERSONS,
        directory_envelope("directory.person.updated", renamed, person, [direction]),
    )
    wait_for(
        lambda: _summary(stack, org, sales).json()["people"][0]["last_name"] == "Петрова",
        60,
        "the renamed person in the summary",
    )

    # the organization's card changes in the directory: the summary shows the new name
    updated = OrganizationUpdated(
        organization_id=org,
        version=2,
        changes={"legal_name": FieldChange(old="ООО «Старое имя»", new="ООО «Новое имя»")},
    )
    publish(
        stack.bootstrap,
        ORGANIZATIONS,
        directory_envelope("directory.organization.updated", updated, org, [direction]),
    )
    wait_for(
        lambda: _summary(stack, org, sales).json()["card"]["legal_name"] == "ООО «Новое имя»",
        60,
        "the new name in the summary",
    )

    # a new interaction invalidates it as well
    _summary(stack, org, sales, last=2)
    assert _summary(stack, org, sales, last=2).headers["x-cache"] == "hit"
    httpx.post(
        f"{stack.url}/v1/interactions",
        json={"organization_id": str(org), "kind": "email", "subject": "Latest news"},
        headers=sales,
    ).raise_for_status()
    after = _summary(stack, org, sales, last=2)
    assert after.headers["x-cache"] == "miss"
    assert after.json()["last_interactions"][0]["subject"] == "Latest news"


def test_moving_the_client_to_another_direction_hides_its_summary(
    stack: Stack, direction: str
) -> None:
    org = stack.client([direction])
    sales = bearer(stack.issuer, "alice", directions=[direction])
    assert _summary(stack, org, sales).status_code == 200
    moved = OrganizationUpdated(
        organization_id=org,
        version=2,
        changes={"directions": FieldChange(old=[direction], new=["somewhere-else"])},
    )
    publish(
        stack.bootstrap,
        ORGANIZATIONS,
        directory_envelope("directory.organization.updated", moved, org, ["somewhere-else"]),
    )
    wait_for(lambda: _summary(stack, org, sales).status_code == 404, 60, "the summary to be hidden")


async def _insert_deals(database_url: str, org: uuid.UUID, direction: str) -> None:
    engine = create_async_engine(database_url.replace("postgresql://", "postgresql+asyncpg://"))
    try:
        async with engine.begin() as conn:
            for title, directions in (("Visible deal", [direction]), ("Hidden deal", ["other"])):
                await conn.execute(
                    text(
                        "INSERT INTO client_deals (deal_id, organization_id, title, stage, status,"
                        " amount, currency, directions, version, updated_at) VALUES (:id, :org,"
                        " :title, 'Negotiation', 'open', 1000.50, 'RUB', :dirs, 1, now())"
                    ),
                    {"id": uuid.uuid4(), "org": org, "title": title, "dirs": directions},
                )
            await conn.execute(
                text(
                    "UPDATE summary_generations SET generation = generation + 1 WHERE"
                    " organization_id = :org"
                ),
                {"org": org},
            )
    finally:
        await engine.dispose()


def test_the_summary_is_filtered_by_direction(stack: Stack, direction: str) -> None:
    org = stack.client([direction, "shared-line"])
    sales = bearer(stack.issuer, "alice", directions=[direction])
    httpx.post(
        f"{stack.url}/v1/interactions",
        json={"organization_id": str(org), "kind": "call", "subject": "Hello"},
        headers=sales,
    ).raise_for_status()
    asyncio.run(_insert_deals(stack.database_url, org, direction))

    mine = _summary(stack, org, sales).json()
    assert [d["title"] for d in mine["open_deals"]] == ["Visible deal"]
    assert mine["open_deals"][0]["amount"] == "1000.50"
    everything = _summary(stack, org, stack.admin).json()
    assert sorted(d["title"] for d in everything["open_deals"]) == ["Hidden deal", "Visible deal"]

    stranger = bearer(stack.issuer, "bob", directions=["elsewhere"])
    hidden = _summary(stack, org, stranger)
    assert hidden.status_code == 404
    assert hidden.headers["content-type"] == "application/problem+json"
    assert _summary(stack, uuid.uuid4(), stack.admin).status_code == 404
    for params in ({"last": 0}, {"next": 101}):
        bad = _summary(stack, org, sales, **params)
        assert bad.status_code == 422
        assert bad.headers["content-type"] == "application/problem+json"
