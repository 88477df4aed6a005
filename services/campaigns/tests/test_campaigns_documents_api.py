"""Documents of an event over HTTP: upload (checked), all of an event in one call, search by
name, description and extracted text, download, delete, access by direction, audit; on local
disk and in an S3-compatible store."""

from __future__ import annotations

import asyncio
import io
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.session import get_session
from campaigns_testkit import Stack, create_event
from clientele_shared.auth.tokens import TokenIssuer
from clientele_testkit.infra import Infrastructure
from clientele_testkit.stack import running

pytestmark = pytest.mark.integration

MAX_BYTES = 200_000


def _pdf(text: str) -> bytes:
    """A one-page PDF showing ``text`` (Latin-1) in Helvetica, with a correct xref table."""
    stream = f"BT /F1 12 Tf 72 712 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer << /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _docx(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(
            "word/document.xml",
            '<w:document xmlns:w="w"><w:body><w:p><w:r><w:t xml:space="preserve">'
            f"{text}</w:t></w:r></w:p></w:body></w:document>",
        )
    return buffer.getvalue()


DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.fixture(scope="module")
def documents_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("campaign-documents")


@pytest.fixture(scope="module")
def stack(
    infra: Infrastructure,
    service_env: dict[str, str],
    campaigns_migrated: str,
    issuer: TokenIssuer,
    tmp_path_factory: pytest.TempPathFactory,
    documents_dir: Path,
) -> Iterator[Stack]:
    """The campaigns service keeping documents on local disk, up to MAX_BYTES each."""
    env = {
        **service_env,
        "ATTACHMENTS_DIR": str(documents_dir),
        "ATTACHMENT_MAX_BYTES": str(MAX_BYTES),
    }
    logs = tmp_path_factory.mktemp("campaigns-documents")
    with running("campaigns", infra, env, campaigns_migrated, issuer, logs) as stack:
        yield stack


def _upload(
    stack: Stack,
    event_id: str,
    headers: dict[str, str],
    name: str,
    data: bytes,
    content_type: str,
    **form: str,
) -> Any:
    return stack.call(
        "POST",
        f"/v1/campaigns/{event_id}/documents",
        headers,
        files={"file": (name, data, content_type)},
        data=form,
    )


def _stored(documents_dir: Path, event_id: str) -> list[str]:
    folder = documents_dir / event_id
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_documents_of_an_event_found_by_text(stack: Stack, documents_dir: Path) -> None:
    direction = f"d-{uuid.uuid4().hex[:8]}"
    writer = stack.user([direction])
    event = create_event(stack, [direction], title="Дилерский семинар")
    event_id = event["id"]
    pdf = _pdf("Agenda: hydraulic pumps maintenance workshop")
    first = _upload(
        stack, event_id, writer, "agenda_2026.pdf", pdf, "application/pdf", category="programme"
    )
    assert first.status_code == 201, first.text
    assert first.headers["Location"] == f"/v1/campaigns/{event_id}/documents/{first.json()['id']}"
    assert first.json()["text_indexed"] is True
    assert first.json()["category"] == "programme"
    text = "Программа семинара: гидравлические насосы".encode("cp1251")
    second = _upload(
        stack,
        event_id,
        writer,
        "программа.txt",
        text,
        "text/plain",
        description="Раздаточный материал для дилеров",
    )
    assert second.status_code == 201, second.text
    third = _upload(
        stack,
        event_id,
        writer,
        "договор\u202egpj.docx",
        _docx("Договор аренды конференц-зала"),
        DOCX,
        category="contract",
    )
    assert third.status_code == 201, third.text
    assert third.json()["filename"] == "договорgpj.docx"  # the bidi override dropped
    photo = _upload(
        stack,
        event_id,
        writer,
        "зал.png",
        b"\x89PNG\r\n\x1a\n" + b"\0" * 64,
        "image/png",
        category="photo",
    )
    assert photo.status_code == 201, photo.text
    assert photo.json()["text_indexed"] is False
    ids = [r.json()["id"] for r in (first, second, third, photo)]

    everything = stack.call("GET", f"/v1/campaigns/{event_id}/documents", writer).json()
    assert [d["id"] for d in everything] == ids[::-1]  # all of them in one call, newest first
    photos = stack.call(
        "GET", f"/v1/campaigns/{event_id}/documents", writer, params={"category": "photo"}
    ).json()
    assert [d["id"] for d in photos] == [ids[3]]

    def found(query: str, path: str = f"/v1/campaigns/{event_id}/documents") -> list[str]:
        response = stack.call("GET", path, writer, params={"q": query})
        assert response.status_code == 200, response.text
        return [d["id"] for d in response.json()]

    assert found("hydraulic pump") == [ids[0]]  # the PDF's text, English stemming
    assert found("насосов") == [ids[1]]  # the text file's content, Russian stemming
    assert found("дилер") == [ids[1]]  # the description
    assert found("аренда") == [ids[2]]  # the Word file's text
    assert found("agenda") == [ids[0]]  # the file name
    assert found("2026") == [ids[0]]
    assert found("nothing-like-it") == []
    across = stack.call("GET", "/v1/documents", writer, params={"q": "насосы"}).json()
    assert {(d["id"], d["campaign_title"]) for d in across} == {(ids[1], "Дилерский семинар")}

    download = stack.call("GET", f"/v1/campaigns/{event_id}/documents/{ids[0]}/content", writer)
    assert download.status_code == 200
    assert download.content == pdf
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-disposition"] == "attachment; filename*=UTF-8''agenda_2026.pdf"
    assert _stored(documents_dir, event_id) == sorted(ids)

    deleted = stack.call("DELETE", f"/v1/campaigns/{event_id}/documents/{ids[0]}", writer)
    assert deleted.status_code == 204
    assert _stored(documents_dir, event_id) == sorted(ids[1:])
    assert found("hydraulic") == []
    gone = stack.call("GET", f"/v1/campaigns/{event_id}/documents/{ids[0]}", writer)
    assert gone.status_code == 404
    audit = stack.call("GET", f"/v1/campaigns/{event_id}/audit", writer).json()
    actions = [(e["action"], e["changes"].get("document", {})) for e in audit[1:]]
    assert [a for a, _ in actions] == ["document_added"] * 4 + ["document_removed"]
    assert actions[2][1]["new"]["filename"] == "договорgpj.docx"
    assert actions[4][1]["old"] == {"id": ids[0], "filename": "agenda_2026.pdf"}


def test_documents_follow_the_event_directions(stack: Stack, documents_dir: Path) -> None:
    own, other = f"d-{uuid.uuid4().hex[:8]}", f"d-{uuid.uuid4().hex[:8]}"
    event = create_event(stack, [own, other])
    event_id = event["id"]
    both = stack.user([own, other])
    created = _upload(stack, event_id, both, "plan.txt", b"secret plan", "text/plain")
    assert created.status_code == 201
    document_id = created.json()["id"]
    half = stack.user([own], subject="bob")  # sees the event, may not change it
    assert _upload(stack, event_id, half, "x.txt", b"more", "text/plain").status_code == 403
    assert (
        stack.call("DELETE", f"/v1/campaigns/{event_id}/documents/{document_id}", half).status_code
        == 403
    )
    assert len(stack.call("GET", f"/v1/campaigns/{event_id}/documents", half).json()) == 1
    stranger = stack.user(["elsewhere"], subject="eve")
    for path in (
        f"/v1/campaigns/{event_id}/documents",
        f"/v1/campaigns/{event_id}/documents/{document_id}",
        f"/v1/campaigns/{event_id}/documents/{document_id}/content",
    ):
        assert stack.call("GET", path, stranger).status_code == 404, path
    assert _upload(stack, event_id, stranger, "x.txt", b"x", "text/plain").status_code == 404
    assert stack.call("GET", "/v1/documents", stranger, params={"q": "secret"}).json() == []
    assert _stored(documents_dir, event_id) == [document_id]

    removed = stack.call("DELETE", f"/v1/campaigns/{event_id}", both, if_match=1)
    assert removed.status_code == 204
    assert stack.call("GET", "/v1/documents", both, params={"q": "secret"}).json() == []
    assert stack.call("GET", f"/v1/campaigns/{event_id}/documents", both).status_code == 404


@pytest.mark.parametrize(
    ("name", "data", "content_type", "form", "status"),
    [
        ("big.txt", b"a" * (MAX_BYTES + 1), "text/plain", {}, 413),
        ("tool.pdf", b"MZ\x90\x00" + b"\0" * 60, "application/pdf", {}, 415),
        ("fake.pdf", b"not a pdf at all", "application/pdf", {}, 415),
        ("run.sh", b"#!/bin/sh\nrm -rf /\n", "text/plain", {}, 415),
        ("app.bin", b"\x01\x02", "application/x-msdownload", {}, 415),
        ("empty.txt", b"", "text/plain", {}, 422),
        ("a.txt", b"text", "text/plain", {"category": "poster"}, 422),
        ("a.txt", b"text", "text/plain", {"description": "bad\x00nul"}, 422),
        ("a.txt", b"text", "text/plain", {"description": "x" * 2001}, 422),
    ],
)
def test_bad_uploads_refused_and_nothing_kept(
    stack: Stack,
    documents_dir: Path,
    name: str,
    data: bytes,
    content_type: str,
    form: dict[str, str],
    status: int,
) -> None:
    direction = f"d-{uuid.uuid4().hex[:8]}"
    event = create_event(stack, [direction])
    writer = stack.user([direction])
    response = _upload(stack, event["id"], writer, name, data, content_type, **form)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert stack.call("GET", f"/v1/campaigns/{event['id']}/documents", writer).json() == []
    assert _stored(documents_dir, event["id"]) == []


def test_unknown_event_and_document(stack: Stack) -> None:
    writer = stack.user(["north"])
    missing = uuid.uuid4()
    assert _upload(stack, str(missing), writer, "a.txt", b"a", "text/plain").status_code == 404
    event = create_event(stack)
    assert (
        stack.call(
            "GET", f"/v1/campaigns/{event['id']}/documents/{missing}/content", writer
        ).status_code
        == 404
    )
    assert stack.call("GET", "/v1/documents", writer, params={"q": ""}).status_code == 422


# --- in an S3-compatible store ------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_bucket(infra: Infrastructure) -> str:
    assert infra.s3 is not None, "the test infrastructure has no S3 store"
    name = f"clientele-test-{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        assert infra.s3 is not None
        async with _s3(infra) as client:
            await client.create_bucket(Bucket=name)

    asyncio.run(create())
    return name


def _s3(infra: Infrastructure) -> Any:
    assert infra.s3 is not None
    return get_session().create_client(
        "s3",
        region_name="us-east-1",
        endpoint_url=infra.s3.endpoint_url,
        aws_access_key_id=infra.s3.access_key_id,
        aws_secret_access_key=infra.s3.secret_access_key,
    )


def _keys(infra: Infrastructure, bucket: str) -> list[str]:
    async def read() -> list[str]:
        async with _s3(infra) as client:
            listed = await client.list_objects_v2(Bucket=bucket)
            return sorted(item["Key"] for item in listed.get("Contents", []))

    return asyncio.run(read())


def test_documents_in_s3(
    infra: Infrastructure,
    service_env: dict[str, str],
    campaigns_migrated: str,
    issuer: TokenIssuer,
    tmp_path: Path,
    s3_bucket: str,
) -> None:
    env = {
        **service_env,
        "ATTACHMENT_STORAGE": "s3",
        "S3_BUCKET": s3_bucket,
        "S3_KEY_PREFIX": "campaigns/",
    }
    with running("campaigns", infra, env, campaigns_migrated, issuer, tmp_path) as s3_stack:
        direction = f"d-{uuid.uuid4().hex[:8]}"
        writer = s3_stack.user([direction])
        event_id = create_event(s3_stack, [direction])["id"]
        pdf = _pdf("Conference photos index")
        created = _upload(s3_stack, event_id, writer, "index.pdf", pdf, "application/pdf")
        assert created.status_code == 201, created.text
        document_id = created.json()["id"]
        assert _keys(infra, s3_bucket) == [f"campaigns/{event_id}/{document_id}"]
        content = s3_stack.call(
            "GET", f"/v1/campaigns/{event_id}/documents/{document_id}/content", writer
        )
        assert content.content == pdf
        refused = _upload(s3_stack, event_id, writer, "x.pdf", b"nope", "application/pdf")
        assert refused.status_code == 415
        assert (
            s3_stack.call(
                "DELETE", f"/v1/campaigns/{event_id}/documents/{document_id}", writer
            ).status_code
            == 204
        )
        assert _keys(infra, s3_bucket) == []
