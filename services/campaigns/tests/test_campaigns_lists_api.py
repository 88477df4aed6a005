"""A directory list resolved into an event's participants: the static memberships read model,
the members at that moment kept with what became of each, blocked and unseen ones refused."""

from __future__ import annotations

import uuid

from campaigns_testkit import Stack, create_event
from clientele_shared.bulk import COPY_FROM
from clientele_shared.events.catalog import CAMPAIGN_EVENTS, LIST_MEMBERS_STATE, ORGANIZATIONS
from clientele_shared.events.schemas.directory import ListMemberState, OrganizationCreated
from clientele_testkit.processes import wait_for
from clientele_testkit.stack import directory_envelope

NORTH = ["north"]


def _membership(
    stack: Stack,
    list_id: uuid.UUID,
    added: list[uuid.UUID] | None = None,
    removed: list[uuid.UUID] | None = None,
) -> None:
    """Publish a static list's change; wait until its removals are handled (a member's record
    and its tombstone share a key, so the record was handled before)."""
    for removal in stack.static_list(
        list_id, added or [], removed or [], name="Дилеры 2026", directions=NORTH
    ):
        stack.wait_until(
            "SELECT count(*) > 0 FROM inbox WHERE event_id = :id",
            True,
            "a removal handled",
            id=removal,
        )


def test_list_resolved_and_resolution_kept(stack: Stack) -> None:
    event = create_event(stack)
    base = f"/v1/campaigns/{event['id']}/list-resolutions"
    north = stack.user(NORTH)
    good = sorted([stack.organization(NORTH), stack.organization(NORTH)])
    blocked = stack.organization(NORTH, blocked=True)
    south = stack.organization(["south"])
    gone = stack.organization(NORTH)
    list_id = uuid.uuid4()
    _membership(stack, list_id, added=[*good, blocked, south, gone])
    _membership(stack, list_id, removed=[gone])
    stack.wait_until(
        "SELECT count(*) FROM directory_list_members WHERE list_id = :id",
        4,
        "the list's memberships",
        id=list_id,
    )
    unknown = stack.call("POST", base, north, json={"list_id": str(uuid.uuid4())})
    assert unknown.status_code == 422
    stage = event["stages"][1]["id"]
    response = stack.call("POST", base, north, json={"list_id": str(list_id), "stage_id": stage})
    assert response.status_code == 201, response.text
    result = response.json()
    added = stack.call("GET", f"/v1/campaigns/{event['id']}/participants", north).json()
    assert sorted(p["organization_id"] for p in added) == [str(org) for org in good]
    assert {p["stage_id"] for p in added} == {stage}
    # the south organization is refused but not named: its id is another direction's
    assert [(r["organization_id"], r["reason"]) for r in result["refused"]] == [
        (str(blocked), "blocked")
    ]
    resolution = result["resolution"]
    assert (resolution["members"], resolution["added"], resolution["refused"]) == (4, 2, 2)
    # each added one as an addition by hand writes it: audit entry, stage history, event
    first = f"/v1/campaigns/{event['id']}/participants/{added[0]['id']}"
    audit = stack.call("GET", f"{first}/audit", north).json()
    assert [(e["action"], e["version"], e["actor_subject"]) for e in audit] == [
        ("added", 1, "alice")
    ]
    assert audit[0]["changes"] == {
        "campaign_id": {"old": None, "new": event["id"]},
        "stage_id": {"old": None, "new": stage},
        "organization_id": {"old": None, "new": added[0]["organization_id"]},
        "person_id": {"old": None, "new": None},
        "status": {"old": None, "new": "invited"},
    }
    history = stack.call("GET", f"{first}/history", north).json()
    assert [(h["from_stage_id"], h["to_stage_id"], h["status"]) for h in history] == [
        (None, stage, "invited")
    ]
    refusals_path = f"/v1/campaigns/{event['id']}/participants/refusals"
    refusals = stack.call("GET", refusals_path, north).json()
    assert [(r["organization_id"], r["reason"]) for r in refusals] == [(str(blocked), "blocked")]
    both = stack.user(["north", "south"])
    refusals = stack.call("GET", refusals_path, both).json()
    assert sorted((r["organization_id"], r["reason"]) for r in refusals) == sorted(
        [(str(blocked), "blocked"), (str(south), "unknown_organization")]
    )
    published = [
        e
        for e in stack.events(CAMPAIGN_EVENTS, {event["id"]}, wanted=2)
        if e.type == "campaigns.participants.added"
    ]
    assert len(published) == 1
    assert published[0].payload["stage_id"] == stage
    assert sorted(p["organization_id"] for p in published[0].payload["participants"]) == [
        str(org) for org in good
    ]
    assert resolution["list_name"] == "Дилеры 2026"
    # the list changes later: the resolution keeps the members as they were
    late = stack.organization(NORTH)
    _membership(stack, list_id, added=[late], removed=[good[0]])
    stack.wait_until(
        "SELECT count(*) FROM directory_list_members WHERE list_id = :id AND organization_id = :o",
        1,
        "the late member",
        id=list_id,
        o=late,
    )
    members = f"{base}/{resolution['id']}/members"
    kept = stack.call("GET", members, north).json()
    assert {(m["organization_id"], m["outcome"]) for m in kept} == {
        (str(good[0]), "added"),
        (str(good[1]), "added"),
        (str(blocked), "blocked"),
    }
    kept = stack.call("GET", members, both).json()
    assert (str(south), "unknown_organization") in {
        (m["organization_id"], m["outcome"]) for m in kept
    }
    assert [r["id"] for r in stack.call("GET", base, north).json()] == [resolution["id"]]
    again = stack.call("POST", base, north, json={"list_id": str(list_id)}).json()
    assert again["resolution"]["added"] == 1
    everyone = stack.call("GET", f"/v1/campaigns/{event['id']}/participants", north).json()
    assert str(late) in {p["organization_id"] for p in everyone}
    assert {r["reason"] for r in again["refused"]} == {"already_added", "blocked"}
    assert str(south) not in {r["organization_id"] for r in again["refused"]}
    assert again["resolution"]["refused"] == 3  # good[1] already there, blocked, south
    assert len(stack.call("GET", base, north).json()) == 2
    south_user = stack.user(["south"])
    for method, path, body in [
        ("GET", base, None),
        ("POST", base, {"list_id": str(list_id)}),
        ("GET", f"{base}/{resolution['id']}/members", None),
    ]:
        assert stack.call(method, path, south_user, json=body).status_code == 404
    missing = stack.call("GET", f"{base}/{uuid.uuid4()}/members", north)
    assert missing.status_code == 404


def test_another_directions_list_is_an_unknown_reference(stack: Stack) -> None:
    """A caller may resolve only a list sharing a direction with them: another direction's
    list (or one without directions) is refused like a list that does not exist (422
    unknown_reference), and nothing is written."""
    event = create_event(stack)
    base = f"/v1/campaigns/{event['id']}/list-resolutions"
    member = stack.organization(NORTH)
    south_list, no_direction = uuid.uuid4(), uuid.uuid4()
    stack.static_list(south_list, [member], name="Южный", directions=["south"])
    stack.static_list(no_direction, [member], name="Ничей")
    stack.wait_until(
        "SELECT count(*) FROM directory_list_members WHERE list_id IN (:a, :b)",
        2,
        "both lists' members",
        a=south_list,
        b=no_direction,
    )
    north = stack.user(NORTH)
    for list_id in (south_list, no_direction):
        response = stack.call("POST", base, north, json={"list_id": str(list_id)})
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        [error] = response.json()["errors"]
        assert (error["location"][-1], error["type"]) == ("list_id", "unknown_reference")
    assert stack.call("GET", base, north).json() == []
    assert stack.call("GET", f"/v1/campaigns/{event['id']}/participants", north).json() == []
    # a caller of both directions sees the south list
    both = stack.user(["north", "south"])
    response = stack.call("POST", base, both, json={"list_id": str(south_list)})
    assert response.status_code == 201, response.text
    assert response.json()["resolution"]["added"] == 1


def test_tombstones_remove_members_but_never_a_newer_one(stack: Stack) -> None:
    """A tombstone on the live subscription deletes the member; one older than the member's
    record (a redelivery, or the member came back since) leaves it."""
    list_id = uuid.uuid4()
    stays, leaves = stack.organization(NORTH), stack.organization(NORTH)
    _membership(stack, list_id, added=[stays, leaves])
    _membership(stack, list_id, removed=[leaves])
    stack.wait_until(
        "SELECT count(*) FROM directory_list_members WHERE list_id = :id",
        1,
        "the member that left gone",
        id=list_id,
    )
    stale = stack.remove_state(LIST_MEMBERS_STATE, f"{list_id}:{stays}", (1, 0))
    stack.wait_until(
        "SELECT count(*) > 0 FROM inbox WHERE event_id = :id",
        True,
        "the stale tombstone handled",
        id=stale,
    )
    assert (
        stack.scalar(
            "SELECT organization_id FROM directory_list_members WHERE list_id = :id", id=list_id
        )
        == stays
    )


def test_a_list_of_more_than_a_thousand_members_is_added_in_bulk(stack: Stack) -> None:
    """Past ``COPY_FROM`` members the addition writes with COPY: the same participants, audit,
    stage history and refusals as one by one."""
    count = COPY_FROM + 200
    organizations = [uuid.uuid4() for _ in range(count)]
    blocked = set(organizations[:3])
    stack.send(
        ORGANIZATIONS,
        [
            directory_envelope(
                "directory.organization.created",
                OrganizationCreated(
                    organization_id=org,
                    legal_name=f"ООО «Участник {n}»",
                    status="active",
                    directions=NORTH,
                    blocked=org in blocked,
                ),
                org,
            )
            for n, org in enumerate(organizations)
        ],
    )
    list_id = uuid.uuid4()
    stack.static_list(list_id, name="Большой список", directions=NORTH)
    stack.send(
        LIST_MEMBERS_STATE,
        [
            directory_envelope(
                "directory.list_member.state",
                ListMemberState(list_id=list_id, organization_id=org, revision=n + 1),
                f"{list_id}:{org}",
            )
            for n, org in enumerate(organizations)
        ],
    )
    known = (
        "SELECT count(*) FROM directory_list_members m JOIN organizations o "
        "USING (organization_id) WHERE m.list_id = :id"
    )
    wait_for(  # 2,400 records through the consumer: longer than one record's wait
        lambda: stack.scalar(known, id=list_id) == count, 180, "the members and organizations"
    )
    event = create_event(stack)
    base = f"/v1/campaigns/{event['id']}/list-resolutions"
    response = stack.call("POST", base, stack.user(NORTH), json={"list_id": str(list_id)})
    assert response.status_code == 201, response.text
    resolution = response.json()["resolution"]
    assert (resolution["members"], resolution["added"], resolution["refused"]) == (
        count,
        count - 3,
        3,
    )
    assert {(r["organization_id"], r["reason"]) for r in response.json()["refused"]} == {
        (str(org), "blocked") for org in blocked
    }
    params = {"campaign": event["id"]}
    assert (
        stack.scalar("SELECT count(*) FROM participants WHERE campaign_id = :campaign", **params)
        == count - 3
    )
    assert (
        stack.scalar(
            "SELECT count(*) FROM participant_stage_history h JOIN participants p "
            "ON p.id = h.participant_id WHERE p.campaign_id = :campaign",
            **params,
        )
        == count - 3
    )
    assert (
        stack.scalar(
            "SELECT count(*) FROM audit_log a JOIN participants p ON p.id = a.entity_id "
            "WHERE p.campaign_id = :campaign AND a.entity_kind = 'participant' "
            "AND a.action = 'added'",
            **params,
        )
        == count - 3
    )
    members = stack.call(
        "GET", f"{base}/{resolution['id']}/members", stack.user(NORTH), params={"limit": 5000}
    )
    assert len(members.json()) == count
