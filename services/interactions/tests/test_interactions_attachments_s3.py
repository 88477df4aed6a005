"""Attachments in an S3-compatible store (moto's server locally, MinIO in a container): streamed
uploads (multipart past the part size), downloads, deletion, the same refusals as on disk."""

from __future__ import annotations

import hashlib
import os

import httpx
import pytest
from interactions_testkit import S3Bucket, Stack, bearer

pytestmark = pytest.mark.integration

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _interaction(stack: Stack, direction: str) -> tuple[str, dict[str, str]]:
    org = stack.client([direction])
    sales = bearer(stack.issuer, "alice", directions=[direction])
    created = httpx.post(
        f"{stack.url}/v1/interactions",
        json={"organization_id": str(org), "kind": "email", "subject": "Contract"},
        headers=sales,
    )
    return created.json()["interaction"]["id"], sales


def test_upload_download_delete_in_s3(s3_stack: Stack, s3_bucket: S3Bucket, direction: str) -> None:
    interaction_id, sales = _interaction(s3_stack, direction)
    url = f"{s3_stack.url}/v1/interactions/{interaction_id}/attachments"
    uploaded = httpx.post(
        url, files={"file": ("договор.pdf", PDF, "application/pdf")}, headers=sales
    )
    assert uploaded.status_code == 201, uploaded.text
    attachment = uploaded.json()
    key = f"attachments/{interaction_id}/{attachment['id']}"
    assert s3_bucket.objects(f"attachments/{interaction_id}/") == {
        key: {
            "content_type": "application/pdf",
            "size": len(PDF),
            "etag": f'"{hashlib.md5(PDF).hexdigest()}"',  # noqa: S324  # S3's ETag of one PUT
        }
    }

    download = httpx.get(f"{url}/{attachment['id']}", headers=sales)
    assert download.status_code == 200
    assert download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-length"] == str(len(PDF))
    stranger = bearer(s3_stack.issuer, "bob", directions=["elsewhere"])
    assert httpx.get(f"{url}/{attachment['id']}", headers=stranger).status_code == 404

    assert httpx.delete(f"{url}/{attachment['id']}", headers=sales).status_code == 204
    assert s3_bucket.objects(f"attachments/{interaction_id}/") == {}
    assert httpx.get(f"{url}/{attachment['id']}", headers=sales).status_code == 404


def test_a_large_file_goes_as_a_multipart_upload(
    s3_stack: Stack, s3_bucket: S3Bucket, direction: str
) -> None:
    interaction_id, sales = _interaction(s3_stack, direction)
    url = f"{s3_stack.url}/v1/interactions/{interaction_id}/attachments"
    content = b"%PDF-1.7\n" + os.urandom(11 << 20)  # parts of 5 MiB: 5 + 5 + 1
    uploaded = httpx.post(
        url, files={"file": ("scan.pdf", content, "application/pdf")}, headers=sales, timeout=60
    )
    assert uploaded.status_code == 201, uploaded.text
    attachment = uploaded.json()
    assert attachment["size"] == len(content)
    assert attachment["sha256"] == hashlib.sha256(content).hexdigest()
    [stored] = s3_bucket.objects(f"attachments/{interaction_id}/").values()
    assert stored["etag"].endswith('-3"')  # three parts
    assert stored["content_type"] == "application/pdf"
    assert stored["size"] == len(content)

    with httpx.stream("GET", f"{url}/{attachment['id']}", headers=sales, timeout=60) as response:
        assert response.status_code == 200
        received = hashlib.sha256()
        for chunk in response.iter_bytes():
            received.update(chunk)
    assert received.hexdigest() == attachment["sha256"]


@pytest.mark.parametrize(
    ("name", "content", "content_type", "status"),
    [
        ("big.pdf", b"%PDF-" + b"0" * (12 << 20), "application/pdf", 413),
        ("tool.exe", b"MZ\x90\x00" + b"0" * 100, "application/x-msdownload", 415),
        ("fake.pdf", b"not a pdf at all", "application/pdf", 415),
        ("bad.txt", b"ok " + b"\x98\xff", "text/plain", 415),
    ],
    ids=["too-large", "type-not-accepted", "content-mismatch", "not-text"],
)
def test_refused_uploads_store_nothing(
    s3_stack: Stack,
    s3_bucket: S3Bucket,
    direction: str,
    name: str,
    content: bytes,
    content_type: str,
    status: int,
) -> None:
    interaction_id, sales = _interaction(s3_stack, direction)
    url = f"{s3_stack.url}/v1/interactions/{interaction_id}/attachments"
    response = httpx.post(
        url, files={"file": (name, content, content_type)}, headers=sales, timeout=60
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert httpx.get(url, headers=sales).json() == []
    assert s3_bucket.objects(f"attachments/{interaction_id}/") == {}
