"""Large additions and bulk changes take the bulk paths (COPY from 1,000 rows): every
participant still gets its history entry, audit entry and event, in one transaction."""

from __future__ import annotations

import uuid
from collections import Counter

import httpx
from campaigns_testkit import Stack, create_event
from clientele_shared.events.catalog import CAMPAIGN_EVENTS

NORTH = ["north"]
N = 1_500


def test_large_list_and_bulk_update(stack: Stack) -> None:
    list_id = uuid.uuid4()
    stack.execute(  # the read models as the directory's events would leave them, quickly
        """
        WITH o AS (
            INSERT INTO organizations (organization_id, legal_name, directions, version)
            SELECT gen_random_uuid(), 'Org ' || g, '{north}', 1 FROM generate_series(1, :n) g
            RETURNING organization_id
        ), l AS (
            INSERT INTO directory_lists (list_id, name, directions) VALUES (:l, 'big', '{north}')
            RETURNING list_id
        )
        INSERT INTO directory_list_members (list_id, organization_id)
        SELECT (SELECT list_id FROM l), organization_id FROM o
        """,
        n=N,
        l=list_id,
    )
    event = create_event(stack)
    event_id = uuid.UUID(event["id"])
    north = stack.user(NORTH)
    base = f"{stack.url}/v1/campaigns/{event['id']}"
    response = httpx.post(
        f"{base}/list-resolutions", headers=north, json={"list_id": str(list_id)}, timeout=120
    )
    assert response.status_code == 201, response.text
    assert response.json()["resolution"]["added"] == N
    count = "SELECT count(*) FROM {table} WHERE {column} = :id"
    assert stack.scalar(count.format(table="participants", column="campaign_id"), id=event_id) == N
    history = count.format(table="participant_stage_history", column="campaign_id")
    assert stack.scalar(history, id=event_id) == N
    assert (
        stack.scalar(
            "SELECT count(*) FROM audit_log a JOIN participants p ON p.id = a.entity_id "
            "WHERE p.campaign_id = :id AND a.action = 'added'",
            id=event_id,
        )
        == N
    )
    members = count.format(table="list_resolution_members", column="resolution_id")
    resolution = uuid.UUID(response.json()["resolution"]["id"])
    assert stack.scalar(members, id=resolution) == N

    ids: list[str] = []
    while len(ids) < 1_200:
        after = f"&after={ids[-1]}" if ids else ""
        page = httpx.get(f"{base}/participants?limit=1000{after}", headers=north, timeout=60).json()
        ids += [p["id"] for p in page]
    changed = httpx.post(
        f"{base}/participants/bulk-update",
        headers=north,
        json={"participant_ids": ids[:1_200], "status": "attended", "loyalty": 5},
        timeout=120,
    )
    assert changed.status_code == 200, changed.text
    assert len(changed.json()) == 1_200
    envelopes = stack.events(CAMPAIGN_EVENTS, {event["id"]}, 1 + 2 + 2 * 1_200)
    published = Counter(envelope.type for envelope in envelopes)
    batches = [e.payload for e in envelopes if e.type == "campaigns.participants.added"]
    assert [len(batch["participants"]) for batch in batches] == [1000, N - 1000]
    named = {p["participant_id"] for batch in batches for p in batch["participants"]}
    assert len(named) == N
    assert published["campaigns.participant.status_changed"] == 1_200
    assert published["campaigns.participant.outcome_recorded"] == 1_200
    figures = httpx.get(f"{base}/effectiveness", headers=north, timeout=60).json()
    assert figures["attendees"] == 1_200
    assert figures["participants"] == N
