"""References are checked: a participant must be a person this service knows and the caller may
see, so must a responsible employee, a deal (of the same client) and a campaign. Another
direction's record, whatever happened to it (merged, deleted, blocked), answers exactly as a
random id does, so nothing leaks across directions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from clientele_shared.events.catalog import CAMPAIGN_EVENTS, DEALS, PERSONS
from clientele_shared.events.schemas.campaigns import CampaignDeleted
from clientele_shared.events.schemas.directory import (
    PersonBlocked,
    PersonDeleted,
    PersonMerged,
)
from clientele_shared.events.schemas.pipeline import DealDeleted
from clientele_testkit.processes import wait_for
from interactions_testkit import Stack, bearer, directory_envelope, publish

pytestmark = pytest.mark.integration


def _log(stack: Stack, headers: dict[str, str], org: uuid.UUID, person: uuid.UUID) -> Any:
    return httpx.post(
        f"{stack.url}/v1/interactions",
        json={
            "organization_id": str(org),
            "kind": "call",
            "direction": "out",
            "occurred_at": "2026-03-02T10:15:00+03:00",
            "person_ids": [str(person)],
            "subject": "Звонок",
        },
        headers=headers,
    )


def _answer(response: httpx.Response, person: uuid.UUID) -> tuple[int, Any]:
    """What a caller learns: the status and the errors, with the id asked about blanked."""
    body = response.json()
    errors = [(e["location"], e["message"].replace(str(person), "<id>")) for e in body["errors"]]
    return response.status_code, errors


def test_another_directions_person_answers_as_a_random_id(stack: Stack, direction: str) -> None:
    north = f"{direction}-n"
    org = stack.client([direction])
    sales = bearer(stack.issuer, "alice", directions=[direction])
    mine = stack.person([direction])
    assert _log(stack, sales, org, mine).status_code == 201

    plain, merged, deleted, blocked, survivor = (stack.person([north]) for _ in range(5))
    events = [
        directory_envelope(
            "directory.person.merged",
            PersonMerged(
                survivor_id=survivor, merged_id=merged, survivor_version=2, merged_version=2
            ),
            merged,
            [north],
        ),
        directory_envelope(
            "directory.person.deleted",
            PersonDeleted(person_id=deleted, version=2),
            deleted,
            [north],
        ),
        directory_envelope(
            "directory.person.blocked",
            PersonBlocked(
                person_id=blocked,
                entry_id=uuid.uuid4(),
                basis="person",
                reason="r",
                decided_by="security",
            ),
            blocked,
            [north],
        ),
    ]
    publish(stack.bootstrap, PERSONS, *events)
    for column, person in (("merged_into", merged), ("deleted", deleted), ("blocked", blocked)):
        sql = f"SELECT {column} IS NOT NULL AND {column}::text <> 'false' FROM persons"
        wait_for(
            lambda sql=sql, person=person: stack.scalar(f"{sql} WHERE person_id = :id", id=person),
            60,
            f"the person's {column} to arrive",
        )

    unknown = uuid.uuid4()
    random = _answer(_log(stack, sales, org, unknown), unknown)
    assert random[0] == 422
    for foreign in (plain, merged, deleted, blocked, survivor):
        assert _answer(_log(stack, sales, org, foreign), foreign) == random, foreign
    # the north side itself still sees them as they are
    northern = bearer(stack.issuer, "bob", directions=[direction, north])
    assert _log(stack, northern, org, deleted).status_code == 422
    assert "deleted" in _log(stack, northern, org, deleted).text
    merged_log = _log(stack, northern, org, merged)
    assert merged_log.status_code == 201, merged_log.text
    assert merged_log.json()["interaction"]["person_ids"] == [str(survivor)]


def _blank(response: httpx.Response, *ids: uuid.UUID) -> tuple[int, Any]:
    """The status and the errors, with the ids asked about blanked."""
    body = response.json()
    messages = []
    for error in body.get("errors", []):
        message = error["message"]
        for blank in ids:
            message = message.replace(str(blank), "<id>")
        messages.append((error["location"], message))
    return response.status_code, messages


def _due() -> str:
    return (datetime.now(UTC) + timedelta(days=2)).isoformat()


def test_responsible_employees_are_checked_without_an_oracle(stack: Stack, direction: str) -> None:
    north = f"{direction}-n"
    org = stack.client([direction])
    sales = bearer(stack.issuer, "alice", directions=[direction])
    head = bearer(stack.issuer, "boss", roles=["head_of_sales"], directions=[direction])
    mine = stack.employee([direction])
    theirs = stack.employee([north])
    unknown = uuid.uuid4()

    def plan(employee: uuid.UUID) -> httpx.Response:
        return httpx.post(
            f"{stack.url}/v1/interactions",
            json={
                "organization_id": str(org),
                "kind": "call",
                "status": "planned",
                "due_at": _due(),
                "responsible_employee_id": str(employee),
                "subject": "Звонок",
            },
            headers=sales,
        )

    def follow_up(employee: uuid.UUID) -> httpx.Response:
        return httpx.post(
            f"{stack.url}/v1/interactions",
            json={
                "organization_id": str(org),
                "kind": "call",
                "subject": "Звонок",
                "next": {"due_at": _due(), "responsible_employee_id": str(employee)},
            },
            headers=sales,
        )

    planned = plan(mine)
    assert planned.status_code == 201, planned.text
    contact = planned.json()["interaction"]["id"]

    def reassign(employee: uuid.UUID) -> httpx.Response:
        return httpx.patch(
            f"{stack.url}/v1/interactions/{contact}",
            json={"responsible_employee_id": str(employee)},
            headers={**sales, "If-Match": 'W/"1"'},
        )

    def hand_over(employee: uuid.UUID) -> httpx.Response:
        return httpx.post(
            f"{stack.url}/v1/handovers",
            json={"from_employee_id": str(mine), "to_employee_id": str(employee)},
            headers=head,
        )

    def capture(employee: uuid.UUID) -> httpx.Response:
        mail = (
            "From: Client <c@client.example>\r\nTo: Us <us@ourco.example>\r\n"
            f"Subject: Hi\r\nMessage-ID: <{uuid.uuid4()}@client.example>\r\n\r\nBody\r\n"
        )
        return httpx.post(
            f"{stack.url}/v1/interactions/email",
            files={"file": ("mail.eml", mail.encode(), "message/rfc822")},
            data={"organization_id": str(org), "responsible_employee_id": str(employee)},
            headers=sales,
            timeout=60,  # the first capture starts the parser processes
        )

    for call in (plan, follow_up, reassign, hand_over, capture):
        random = _blank(call(unknown), unknown)
        assert random[0] == 422, (call.__name__, random)
        assert _blank(call(theirs), theirs) == random, call.__name__
    inactive = stack.employee([direction], active=False)
    assert plan(inactive).status_code == 422
    assert follow_up(mine).status_code == 201
    got = httpx.get(f"{stack.url}/v1/interactions/{contact}", headers=sales).json()
    assert (got["version"], got["responsible_employee_id"]) == (1, str(mine)), "nothing moved"
    listed = httpx.get(
        f"{stack.url}/v1/interactions", params={"organization_id": str(org)}, headers=sales
    ).json()
    assert len(listed) == 3  # the planned contact, the follow-up's call and its next contact


def test_deals_and_campaigns_are_checked_without_an_oracle(stack: Stack, direction: str) -> None:
    north = f"{direction}-n"
    org = stack.client([direction])
    other_client = stack.client([direction])
    northern_client = stack.client([north])
    sales = bearer(stack.issuer, "alice", directions=[direction])
    deal = stack.deal(org, [direction])
    foreign_deal = stack.deal(northern_client, [north])
    elsewhere_deal = stack.deal(other_client, [direction])
    campaign = stack.campaign([direction])
    foreign_campaign = stack.campaign([north], schema_version=1)  # both versions are read

    def log(**fields: str) -> httpx.Response:
        return httpx.post(
            f"{stack.url}/v1/interactions",
            json={"organization_id": str(org), "kind": "call", "subject": "Звонок", **fields},
            headers=sales,
        )

    logged = log(deal_id=str(deal), campaign_id=str(campaign))
    assert logged.status_code == 201, logged.text
    contact = logged.json()["interaction"]["id"]
    for field, foreign in (("deal_id", foreign_deal), ("campaign_id", foreign_campaign)):
        unknown = uuid.uuid4()
        random = _blank(log(**{field: str(unknown)}), unknown)
        assert random[0] == 422, random
        assert random[1][0][0] == ["body", field]
        assert _blank(log(**{field: str(foreign)}), foreign) == random, field
        patched = httpx.patch(
            f"{stack.url}/v1/interactions/{contact}",
            json={field: str(foreign)},
            headers={**sales, "If-Match": 'W/"1"'},
        )
        assert _blank(patched, foreign) == random, field
    assert log(deal_id=str(elsewhere_deal)).status_code == 422, "a deal of another client"
    deleted = DealDeleted(deal_id=deal, version=2, organization_id=org)
    publish(
        stack.bootstrap,
        DEALS,
        directory_envelope(
            "pipeline.deal.deleted", deleted, deal, [direction], producer="pipeline"
        ),
    )
    wait_for(
        lambda: (
            stack.scalar("SELECT status FROM client_deals WHERE deal_id = :id", id=deal)
            == "deleted"
        ),
        60,
        "the deal's deletion",
    )
    assert log(deal_id=str(deal)).status_code == 422, "a deleted deal"
    gone = CampaignDeleted(campaign_id=campaign, version=2)
    publish(
        stack.bootstrap,
        CAMPAIGN_EVENTS,
        directory_envelope(
            "campaigns.campaign.deleted", gone, campaign, [direction], producer="campaigns"
        ),
    )
    wait_for(
        lambda: stack.scalar("SELECT deleted FROM campaigns WHERE campaign_id = :id", id=campaign),
        60,
        "the campaign's deletion",
    )
    assert log(campaign_id=str(campaign)).status_code == 422, "a deleted campaign"
    got = httpx.get(f"{stack.url}/v1/interactions/{contact}", headers=sales).json()
    assert got["version"] == 1
