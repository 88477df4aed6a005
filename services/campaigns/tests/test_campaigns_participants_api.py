"""Participants over HTTP: added by hand or in bulk (blocked, unknown and unseen ones refused
and recorded), status and outcome one by one or in bulk with their audit trail and events,
stage moves keeping history, and the directory's merges, deletions and blocks followed."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from campaigns_testkit import Stack, create_event
from clientele_shared.events.catalog import CAMPAIGN_EVENTS
from clientele_shared.events.schemas.directory import (
    OrganizationBlocked,
    OrganizationDeleted,
    OrganizationMerged,
    OrganizationRestored,
    OrganizationUnblocked,
    PersonBlocked,
    PersonDeleted,
    PersonMerged,
)

NORTH = ["north"]


def _add(
    stack: Stack, event: dict[str, Any], entries: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    response = stack.call(
        "POST",
        f"/v1/campaigns/{event['id']}/participants",
        stack.user(NORTH),
        json={"participants": entries, **extra},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _org(org_id: uuid.UUID, person_id: uuid.UUID | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"organization_id": str(org_id)}
    if person_id is not None:
        entry["person_id"] = str(person_id)
    return entry


def test_bulk_addition_refuses_blocked_unknown_and_unseen(stack: Stack) -> None:
    event = create_event(stack)
    good = stack.organization(NORTH)
    person = stack.person(NORTH)
    blocked = stack.organization(NORTH, blocked=True)
    south = stack.organization(["south"])
    unknown = uuid.uuid4()
    result = _add(
        stack,
        event,
        [_org(good), _org(good, person), _org(blocked), _org(south), _org(unknown), _org(good)],
    )
    assert {(p["organization_id"], p["person_id"]) for p in result["added"]} == {
        (str(good), None),
        (str(good), str(person)),
    }
    assert all(p["status"] == "invited" for p in result["added"])
    assert all(p["stage_id"] == event["stages"][0]["id"] for p in result["added"])
    assert sorted((r["organization_id"], r["reason"]) for r in result["refused"]) == sorted(
        [
            (str(blocked), "blocked"),
            (str(south), "unknown_organization"),
            (str(unknown), "unknown_organization"),
        ]
    )
    again = _add(stack, event, [_org(good)])
    assert again["added"] == []
    assert again["refused"] == [
        {"organization_id": str(good), "person_id": None, "reason": "already_added"}
    ]
    recorded = stack.call(
        "GET", f"/v1/campaigns/{event['id']}/participants/refusals", stack.user(NORTH)
    ).json()
    assert [r["reason"] for r in recorded].count("blocked") == 1
    # the answer named what the caller gave; the kept refusals, read by anyone who sees the
    # event, do not name another direction's organization (an unknown id tells nothing)
    assert len(recorded) == 3
    assert str(south) not in {r["organization_id"] for r in recorded}
    assert str(unknown) in {r["organization_id"] for r in recorded}
    listed = stack.call(
        "GET", f"/v1/campaigns/{event['id']}/participants", stack.user(NORTH)
    ).json()
    assert len(listed) == 2
    events = stack.events(CAMPAIGN_EVENTS, {event["id"]}, 2)
    added = [e.payload for e in events if e.type == "campaigns.participants.added"]
    assert len(added) == 1
    assert {(p["organization_id"], p["person_id"]) for p in added[0]["participants"]} == {
        (str(good), None),
        (str(good), str(person)),
    }
    assert added[0]["status"] == "invited"
    blocked_person = stack.person(NORTH)
    stack.publish(
        "person",
        "directory.person.blocked",
        PersonBlocked(
            person_id=blocked_person,
            entry_id=uuid.uuid4(),
            basis="person",
            reason="мошенник",
            decided_by="security",
        ),
        blocked_person,
    )
    stack.wait_until(
        "SELECT blocked FROM persons WHERE person_id = :id", True, "blocked", id=blocked_person
    )
    refused = _add(stack, event, [_org(good, blocked_person)])
    assert refused["refused"][0]["reason"] == "blocked"


@pytest.mark.parametrize(
    "body",
    [
        {"participants": []},
        {"participants": [{"organization_id": "not-a-uuid"}]},
        {"participants": [{"organization_id": str(uuid.uuid4())}], "status": "maybe"},
        {"participants": [{"organization_id": str(uuid.uuid4())}], "stage_id": str(uuid.uuid4())},
        {"participants": [{"organization_id": str(uuid.uuid4()), "extra": 1}]},
    ],
)
def test_bad_addition_is_a_problem(stack: Stack, body: dict[str, Any]) -> None:
    event = create_event(stack)
    response = stack.call(
        "POST", f"/v1/campaigns/{event['id']}/participants", stack.user(NORTH), json=body
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert (
        stack.scalar(
            "SELECT count(*) FROM participant_refusals WHERE campaign_id = :id",
            id=uuid.UUID(event["id"]),
        )
        == 0
    )


def test_status_and_outcome_one_by_one_with_audit_and_events(stack: Stack) -> None:
    event = create_event(stack)
    org = stack.organization(NORTH)
    participant = _add(stack, event, [_org(org)])["added"][0]
    path = f"/v1/campaigns/{event['id']}/participants/{participant['id']}"
    north = stack.user(NORTH)
    assert stack.call("PATCH", path, north, json={"status": "attended"}).status_code == 428
    attended = stack.call("PATCH", path, north, if_match=1, json={"status": "attended"})
    assert attended.status_code == 200, attended.text
    assert attended.headers["ETag"] == 'W/"2"'
    assert stack.call("PATCH", path, north, if_match=1, json={"loyalty": 4}).status_code == 412
    outcome = {
        "loyalty": 4,
        "partnership_interest": 5,
        "notes": "Хочет дилерство",
        "follow_up": True,
    }
    recorded = stack.call("PATCH", path, north, if_match=2, json=outcome)
    assert recorded.status_code == 200
    assert {k: recorded.json()[k] for k in outcome} == outcome
    for bad in [
        {"loyalty": 6},
        {"partnership_interest": 0},
        {"status": "gone"},
        {},
        {"notes": "\u0000"},
    ]:
        response = stack.call("PATCH", path, north, if_match=3, json=bad)
        assert response.status_code == 422, (bad, response.text)
    assert stack.call("GET", path, north).headers["ETag"] == 'W/"3"'
    audit = stack.call("GET", f"{path}/audit", north).json()
    assert [entry["action"] for entry in audit] == ["added", "updated", "updated"]
    assert audit[1]["changes"] == {"status": {"old": "invited", "new": "attended"}}
    assert audit[2]["changes"]["loyalty"] == {"old": None, "new": 4}
    events = stack.events(CAMPAIGN_EVENTS, {event["id"]}, 4)
    assert [e.type for e in events][-2:] == [
        "campaigns.participant.status_changed",
        "campaigns.participant.outcome_recorded",
    ]
    assert events[-2].payload["status"] == "attended"
    assert events[-2].payload["organization_id"] == str(org)
    assert events[-1].payload["follow_up"] is True


def test_bulk_update_all_or_nothing(stack: Stack) -> None:
    event = create_event(stack)
    orgs = [stack.organization(NORTH) for _ in range(3)]
    added = _add(stack, event, [_org(org) for org in orgs])["added"]
    ids = [p["id"] for p in added]
    base = f"/v1/campaigns/{event['id']}/participants"
    north = stack.user(NORTH)
    unknown = stack.call(
        "POST",
        f"{base}/bulk-update",
        north,
        json={"participant_ids": [*ids, str(uuid.uuid4())], "status": "confirmed"},
    )
    assert unknown.status_code == 422
    assert all(
        stack.call("GET", f"{base}/{pid}", north).json()["status"] == "invited" for pid in ids
    )
    first = stack.call(
        "POST",
        f"{base}/bulk-update",
        north,
        json={"participant_ids": ids[:1], "status": "attended"},
    )
    assert first.status_code == 200
    response = stack.call(
        "POST",
        f"{base}/bulk-update",
        north,
        json={"participant_ids": ids, "status": "attended", "follow_up": True},
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert len(changed) == 3
    assert {p["status"] for p in changed} == {"attended"}
    assert [p["version"] for p in changed if p["id"] == ids[0]] == [3]
    audit = stack.call("GET", f"{base}/{ids[1]}/audit", north).json()
    assert audit[-1]["action"] == "bulk_updated"
    assert audit[-1]["changes"] == {
        "status": {"old": "invited", "new": "attended"},
        "follow_up": {"old": False, "new": True},
    }
    nothing = stack.call("POST", f"{base}/bulk-update", north, json={"participant_ids": ids})
    assert nothing.status_code == 422


def test_moves_keep_history(stack: Stack) -> None:
    event = create_event(stack)
    stages = [s["id"] for s in event["stages"]]
    orgs = [stack.organization(NORTH) for _ in range(2)]
    added = _add(stack, event, [_org(org) for org in orgs], stage_id=stages[1])["added"]
    ids = [p["id"] for p in added]
    base = f"/v1/campaigns/{event['id']}/participants"
    north = stack.user(NORTH)
    bad_stage = stack.call(
        "POST",
        f"{base}/move",
        north,
        json={"participant_ids": ids, "to_stage_id": str(uuid.uuid4())},
    )
    assert bad_stage.status_code == 422
    moved = stack.call(
        "POST", f"{base}/move", north, json={"participant_ids": ids, "to_stage_id": stages[2]}
    )
    assert moved.status_code == 200, moved.text
    assert {p["stage_id"] for p in moved.json()} == {stages[2]}
    stack.call("PATCH", f"{base}/{ids[0]}", north, if_match=2, json={"status": "attended"})
    stack.call(
        "POST", f"{base}/move", north, json={"participant_ids": ids[:1], "to_stage_id": stages[3]}
    )
    history = stack.call("GET", f"{base}/{ids[0]}/history", north).json()
    assert [(h["from_stage_id"], h["to_stage_id"], h["status"]) for h in history] == [
        (None, stages[1], "invited"),
        (stages[1], stages[2], "invited"),
        (stages[2], stages[3], "attended"),
    ]
    at_stage = stack.call("GET", f"{base}?stage_id={stages[2]}", north).json()
    assert [p["id"] for p in at_stage] == [ids[1]]
    holding = stack.call(
        "DELETE", f"/v1/campaigns/{event['id']}/stages/{stages[2]}", north, if_match=1
    )
    assert holding.status_code == 409


def test_directory_merges_deletions_and_blocks_followed(stack: Stack) -> None:
    event = create_event(stack)
    merged, survivor, other = (stack.organization(NORTH) for _ in range(3))
    both = stack.organization(NORTH)
    _add(stack, event, [_org(merged), _org(other), _org(both)])
    base = f"/v1/campaigns/{event['id']}/participants"
    north = stack.user(NORTH)

    def organizations() -> set[str]:
        return {p["organization_id"] for p in stack.call("GET", base, north).json()}

    stack.publish(
        "organization",
        "directory.organization.merged",
        OrganizationMerged(
            survivor_id=survivor, merged_id=merged, survivor_version=2, merged_version=2
        ),
        survivor,
    )
    stack.wait_until(
        "SELECT count(*) FROM participants WHERE organization_id = :id", 1, "moved", id=survivor
    )
    assert organizations() == {str(survivor), str(other), str(both)}
    audit_entry = stack.scalar(
        "SELECT action FROM audit_log WHERE entity_kind = 'participant' AND changes->"
        "'organization_id'->>'new' = :id",
        id=str(survivor),
    )
    assert audit_entry == "client_merged"
    # a second participant of the survivor stays hidden with the merged record
    _add(stack, event, [_org(survivor)])  # already there: refused
    stack.publish(
        "organization",
        "directory.organization.merged",
        OrganizationMerged(
            survivor_id=survivor, merged_id=both, survivor_version=3, merged_version=2
        ),
        survivor,
    )
    stack.wait_until(
        "SELECT client_hidden FROM participants WHERE organization_id = :id",
        True,
        "hidden",
        id=both,
    )
    assert organizations() == {str(survivor), str(other)}

    stack.publish(
        "organization",
        "directory.organization.deleted",
        OrganizationDeleted(organization_id=other, version=2),
        other,
    )
    stack.wait_until(
        "SELECT client_hidden FROM participants WHERE organization_id = :id",
        True,
        "hidden",
        id=other,
    )
    assert organizations() == {str(survivor)}
    stack.publish(
        "organization",
        "directory.organization.restored",
        OrganizationRestored(organization_id=other, version=3),
        other,
    )
    stack.wait_until(
        "SELECT client_hidden FROM participants WHERE organization_id = :id",
        False,
        "shown",
        id=other,
    )
    stack.publish(
        "organization",
        "directory.organization.blocked",
        OrganizationBlocked(
            organization_id=other,
            entry_id=uuid.uuid4(),
            basis="organization",
            reason="долги",
            decided_by="security",
        ),
        other,
    )
    stack.wait_until(
        "SELECT client_blocked FROM participants WHERE organization_id = :id",
        True,
        "flagged",
        id=other,
    )
    flagged = [
        p for p in stack.call("GET", base, north).json() if p["organization_id"] == str(other)
    ]
    assert flagged[0]["client_blocked"] is True
    stack.publish(
        "organization",
        "directory.organization.unblocked",
        OrganizationUnblocked(organization_id=other),
        other,
    )
    stack.wait_until(
        "SELECT client_blocked FROM participants WHERE organization_id = :id",
        False,
        "unflagged",
        id=other,
    )


def test_person_merge_followed(stack: Stack) -> None:
    event = create_event(stack)
    org = stack.organization(NORTH)
    merged, survivor = stack.person(NORTH), stack.person(NORTH)
    _add(stack, event, [_org(org, merged)])
    stack.publish(
        "person",
        "directory.person.merged",
        PersonMerged(survivor_id=survivor, merged_id=merged, survivor_version=2, merged_version=2),
        survivor,
    )
    stack.wait_until(
        "SELECT count(*) FROM participants WHERE person_id = :id", 1, "moved", id=survivor
    )
    stack.publish(
        "person",
        "directory.person.deleted",
        PersonDeleted(person_id=survivor, version=3),
        survivor,
    )
    stack.wait_until(
        "SELECT client_hidden FROM participants WHERE person_id = :id", True, "hidden", id=survivor
    )
    base = f"/v1/campaigns/{event['id']}"
    assert stack.call("GET", f"{base}/participants", stack.user(NORTH)).json() == []
    figures = stack.call("GET", f"{base}/effectiveness", stack.user(NORTH)).json()
    assert figures["participants"] == 0
