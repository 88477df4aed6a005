"""References to people are checked: a participant must be a person this service knows and the
caller may see. Another direction's person, whatever happened to it in the directory (merged,
deleted, blocked), answers exactly as a random id does, so nothing leaks across directions."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from clientele_shared.events.catalog import PERSONS
from clientele_shared.events.schemas.directory import (
    PersonBlocked,
    PersonDeleted,
    PersonMerged,
)
from clientele_shared.testing.processes import wait_for
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
