"""Attachments: stored on local disk within a size limit, content type checked, by direction."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from interactions_testkit import Stack, bearer

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


def _files(stack: Stack, interaction_id: str) -> list[Path]:
    folder = Path(stack.attachments_dir) / interaction_id
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_upload_list_download_delete(stack: Stack, direction: str) -> None:
    interaction_id, sales = _interaction(stack, direction)
    url = f"{stack.url}/v1/interactions/{interaction_id}/attachments"
    uploaded = httpx.post(
        url,
        files={"file": ("договор 2026.pdf", PDF, "application/pdf")},
        headers=sales,
    )
    assert uploaded.status_code == 201, uploaded.text
    attachment = uploaded.json()
    assert attachment["size"] == len(PDF)
    assert attachment["filename"] == "договор 2026.pdf"
    assert len(_files(stack, interaction_id)) == 1

    listed = httpx.get(url, headers=sales).json()
    assert [a["id"] for a in listed] == [attachment["id"]]
    download = httpx.get(f"{url}/{attachment['id']}", headers=sales)
    assert download.status_code == 200
    assert download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert "attachment;" in download.headers["content-disposition"]

    stranger = bearer(stack.issuer, "bob", directions=["elsewhere"])
    assert httpx.get(url, headers=stranger).status_code == 404
    assert httpx.get(f"{url}/{attachment['id']}", headers=stranger).status_code == 404
    assert (
        httpx.post(url, files={"file": ("a.pdf", PDF, "application/pdf")}, headers=stranger)
    ).status_code == 404
    assert httpx.delete(f"{url}/{attachment['id']}", headers=stranger).status_code == 404

    assert httpx.delete(f"{url}/{attachment['id']}", headers=sales).status_code == 204
    assert httpx.get(url, headers=sales).json() == []
    assert _files(stack, interaction_id) == []
    actions = [
        e["action"]
        for e in httpx.get(
            f"{stack.url}/v1/interactions/{interaction_id}/audit", headers=sales
        ).json()
    ]
    assert actions == ["logged", "attachment_added", "attachment_removed"]


@pytest.mark.parametrize(
    ("name", "content", "content_type", "status"),
    [
        ("big.pdf", b"%PDF-" + b"0" * 200_001, "application/pdf", 413),
        ("tool.exe", b"MZ\x90\x00" + b"0" * 100, "application/x-msdownload", 415),
        ("fake.pdf", b"not a pdf at all", "application/pdf", 415),
        ("readme.txt", b"MZ\x90\x00 disguised", "text/plain", 415),
        ("empty.txt", b"", "text/plain", 422),
    ],
    ids=["too-large", "type-not-accepted", "content-mismatch", "executable", "empty"],
)
def test_refused_uploads_write_nothing(
    stack: Stack, direction: str, name: str, content: bytes, content_type: str, status: int
) -> None:
    interaction_id, sales = _interaction(stack, direction)
    url = f"{stack.url}/v1/interactions/{interaction_id}/attachments"
    response = httpx.post(url, files={"file": (name, content, content_type)}, headers=sales)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert httpx.get(url, headers=sales).json() == []
    assert _files(stack, interaction_id) == []


def test_upload_to_an_unknown_interaction_is_404(stack: Stack) -> None:
    url = f"{stack.url}/v1/interactions/{uuid.uuid4()}/attachments"
    response = httpx.post(
        url, files={"file": ("a.pdf", PDF, "application/pdf")}, headers=stack.admin
    )
    assert response.status_code == 404
