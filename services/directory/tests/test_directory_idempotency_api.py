"""Idempotency-Key on the directory: a retried create makes one record, a PATCH applies once."""

import uuid

import httpx
import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_testkit.idempotency import IdempotentCreate, check_idempotent_create, scalar
from clientele_testkit.infra import Infrastructure
from clientele_testkit.processes import ServiceProcess
from directory_testkit import fresh_direction, sales

pytestmark = pytest.mark.integration


def test_a_retried_organization_create_makes_one(
    directory: ServiceProcess, issuer: TokenIssuer, infra: Infrastructure
) -> None:
    direction = fresh_direction()
    database = infra.test_database_url("directory")

    def new_body() -> dict[str, object]:
        return {"legal_name": f"ООО «Повтор {uuid.uuid4().hex[:10]}»", "directions": [direction]}

    def count(body: dict[str, object]) -> int:
        sql = "SELECT count(*) FROM organizations WHERE legal_name = :name"
        return int(scalar(database, sql, name=body["legal_name"]))

    check_idempotent_create(
        IdempotentCreate(
            url=f"{directory.url}/v1/organizations",
            caller=sales(issuer, direction, subject="alice"),
            other_caller=sales(issuer, direction, subject="bob"),
            new_body=new_body,
            count=count,
        )
    )


def test_a_retried_change_is_answered_once(directory: ServiceProcess, issuer: TokenIssuer) -> None:
    """Without the key, the retry of a PATCH that went through is a 412 (the version moved)."""
    direction = fresh_direction()
    alice = sales(issuer, direction, subject="alice")
    created = httpx.post(
        f"{directory.url}/v1/organizations",
        json={"legal_name": "ООО «Первое имя»", "directions": [direction]},
        headers=alice,
    )
    assert created.status_code == 201, created.text
    url = f"{directory.url}/v1/organizations/{created.json()['id']}"
    change = {"legal_name": "ООО «Второе имя»"}
    keyed = {**alice, "If-Match": created.headers["etag"], "Idempotency-Key": "rename-1"}
    first = httpx.patch(url, json=change, headers=keyed)
    again = httpx.patch(url, json=change, headers=keyed)
    assert first.status_code == 200, first.text
    assert first.headers["etag"] == 'W/"2"'
    assert again.headers["idempotent-replayed"] == "true"
    assert (again.status_code, again.content) == (200, first.content)
    assert again.headers["etag"] == 'W/"2"'
    stale = httpx.patch(url, json=change, headers={**keyed, "Idempotency-Key": "rename-2"})
    assert stale.status_code == 412, "a new key is a new request"
    moved = httpx.patch(url, json=change, headers={**keyed, "If-Match": 'W/"2"'})
    assert moved.status_code == 422, "the same key against another version is another request"
    assert httpx.get(url, headers=alice).headers["etag"] == 'W/"2"'
