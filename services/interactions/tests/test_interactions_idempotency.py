"""Idempotency-Key on the interactions' creates: a retried contact is logged once, a retried
upload stored once."""

import os
import uuid

import httpx
import pytest
from clientele_testkit.idempotency import IdempotentCreate, check_idempotent_create, scalar
from interactions_testkit import S3Bucket, Stack, bearer

pytestmark = pytest.mark.integration


def test_a_retried_interaction_log_makes_one(stack: Stack, direction: str) -> None:
    org_id = stack.client([direction])

    def new_body() -> dict[str, object]:
        return {
            "organization_id": str(org_id),
            "kind": "call",
            "subject": f"Retried call {uuid.uuid4().hex[:10]}",
        }

    def count(body: dict[str, object]) -> int:
        sql = "SELECT count(*) FROM interactions WHERE subject = :subject"
        return int(scalar(stack.database_url, sql, subject=body["subject"]))

    check_idempotent_create(
        IdempotentCreate(
            url=f"{stack.url}/v1/interactions",
            caller=bearer(stack.issuer, "alice", directions=[direction]),
            other_caller=bearer(stack.issuer, "bob", directions=[direction]),
            new_body=new_body,
            count=count,
        )
    )


def test_a_retried_upload_is_stored_once(
    s3_stack: Stack, s3_bucket: S3Bucket, direction: str
) -> None:
    """Each retry is a new multipart body (a new boundary) of 3 MiB, hashed as it streams."""
    org_id = s3_stack.client([direction])
    sales = bearer(s3_stack.issuer, "alice", directions=[direction])
    created = httpx.post(
        f"{s3_stack.url}/v1/interactions",
        json={"organization_id": str(org_id), "kind": "email", "subject": "Scan"},
        headers=sales,
    )
    assert created.status_code == 201, created.text
    interaction_id = created.json()["interaction"]["id"]
    url = f"{s3_stack.url}/v1/interactions/{interaction_id}/attachments"
    content = b"%PDF-1.7\n" + os.urandom(3 << 20)
    keyed = {**sales, "Idempotency-Key": f"scan-{uuid.uuid4()}"}

    def upload(data: bytes) -> httpx.Response:
        files = {"file": ("scan.pdf", data, "application/pdf")}
        return httpx.post(url, files=files, headers=keyed, timeout=60)

    first, again = upload(content), upload(content)
    assert first.status_code == 201, first.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert again.headers["location"] == first.headers["location"]
    assert upload(content[:-1] + b"!").status_code == 422
    [stored] = s3_bucket.objects(f"attachments/{interaction_id}/").values()
    assert stored["size"] == len(content)
