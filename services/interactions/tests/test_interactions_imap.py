"""The IMAP poller against a real Dovecot: mail appended over IMAP becomes interactions once."""

from __future__ import annotations

import imaplib
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import httpx
import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.catalog import PERSONS
from clientele_shared.events.schemas.directory import EmploymentChanged, PersonCreated
from clientele_testkit.infra import Infrastructure
from clientele_testkit.processes import ServiceProcess, wait_for
from interactions_testkit import Stack, bearer, directory_envelope, publish

from conftest import VENV_BIN, ImapServer

pytestmark = pytest.mark.integration

PDF = b"%PDF-1.4\n%%EOF\n"
POLL = "0.3"


@dataclass
class ImapStack:
    stack: Stack
    server: ImapServer
    mailbox: str
    process: ServiceProcess

    def imap(self) -> imaplib.IMAP4:
        conn = imaplib.IMAP4(self.server.host, self.server.port, timeout=10)
        conn.login(self.server.username, self.server.password)
        return conn

    def append(self, message: bytes) -> int:
        """Deliver by IMAP APPEND; the new message's UID."""
        conn = self.imap()
        try:
            status, data = conn.append(self.mailbox, None, None, message)
            assert status == "OK", data
            found = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
            assert found, data
            return int(found.group(1))
        finally:
            conn.logout()

    def flags(self, uid: int) -> set[str]:
        conn = self.imap()
        try:
            conn.select(self.mailbox, readonly=True)
            status, data = conn.uid("FETCH", str(uid), "(FLAGS)")
            assert status == "OK", data
            raw = b" ".join(d for d in data if isinstance(d, bytes))
            inner = re.search(rb"FLAGS \(([^)]*)\)", raw)
            return set(inner.group(1).decode().split()) if inner else set()
        finally:
            conn.logout()

    def unflag_seen(self, uid: int) -> None:
        conn = self.imap()
        try:
            conn.select(self.mailbox)
            status, data = conn.uid("STORE", str(uid), "-FLAGS.SILENT", "(\\Seen)")
            assert status == "OK", data
        finally:
            conn.logout()

    def log(self) -> str:
        return self.process.log.read_text(errors="replace")


def _env(
    service_env: dict[str, str],
    database_url: str,
    attachments: Path,
    server: ImapServer,
    **imap: str,
) -> dict[str, str]:
    return {
        **service_env,
        "DATABASE_URL": database_url,
        "ATTACHMENTS_DIR": str(attachments),
        "OVERDUE_WORKER": "false",
        "OWN_EMAIL_DOMAINS": '["ourco.example"]',
        "LOG_JSON": "false",
        "IMAP_HOST": server.host,
        "IMAP_PORT": str(server.port),
        "IMAP_SECURITY": "none",
        "IMAP_USERNAME": server.username,
        "IMAP_POLL_INTERVAL": POLL,
        "IMAP_ACTOR": "imap-test",
        **imap,
    }


@pytest.fixture(scope="module")
def imap_stack(
    infra: Infrastructure,
    service_env: dict[str, str],
    interactions_migrated: str,
    issuer: TokenIssuer,
    imap_server: ImapServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ImapStack]:
    """The service polling a mailbox of its own (so parallel runs never share one)."""
    mailbox = f"test-{uuid.uuid4().hex[:10]}"
    conn = imaplib.IMAP4(imap_server.host, imap_server.port, timeout=10)
    conn.login(imap_server.username, imap_server.password)
    assert conn.create(mailbox)[0] == "OK"
    conn.logout()
    logs = tmp_path_factory.mktemp("interactions-imap")
    env = _env(
        service_env,
        interactions_migrated,
        logs / "attachments",
        imap_server,
        IMAP_PASSWORD=imap_server.password,
        IMAP_MAILBOX=mailbox,
    )
    process = ServiceProcess("interactions", env, logs, VENV_BIN)
    try:
        wait_for(process.ready, 60, "interactions to be ready")
        stack = Stack(
            url=process.url,
            bootstrap=infra.kafka_bootstrap_servers,
            issuer=issuer,
            database_url=interactions_migrated,
            attachments_dir=str(logs / "attachments"),
            admin=bearer(issuer, "root", roles=["admin"]),
        )
        yield ImapStack(stack, imap_server, mailbox, process)
    finally:
        process.stop()


def _person(stack: Stack, org: uuid.UUID, direction: str, email: str) -> uuid.UUID:
    person = uuid.uuid4()
    publish(
        stack.bootstrap,
        PERSONS,
        directory_envelope(
            "directory.person.created",
            PersonCreated(
                person_id=person,
                last_name="Иванова",
                first_name="Мария",
                emails=[email],
                directions=[direction],
            ),
            person,
            [direction],
        ),
        directory_envelope(
            "directory.employment.changed",
            EmploymentChanged(
                employment_id=uuid.uuid4(),
                person_id=person,
                organization_id=org,
                change="created",
                version=1,
                position="CFO",
            ),
            person,
            [direction],
        ),
    )
    wait_for(
        lambda: bool(
            httpx.get(f"{stack.url}/v1/clients/{org}/summary", headers=stack.admin).json()["people"]
        ),
        60,
        "the person to arrive",
    )
    return person


def _eml(sender: str, message_id: str, subject: str = "Счёт на оплату") -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "Alice <alice@ourco.example>"
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime(2026, 3, 1, 9, 30, tzinfo=UTC))
    message["Message-ID"] = message_id
    message.set_content("Добрый день! Счёт во вложении.")
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="счёт.pdf")
    return message.as_bytes()


def _interactions(stack: Stack, org: uuid.UUID) -> list[dict[str, object]]:
    response = httpx.get(
        f"{stack.url}/v1/interactions", params={"organization_id": str(org)}, headers=stack.admin
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, object]] = response.json()
    return items


def test_appended_mail_becomes_one_interaction_with_its_attachment(
    imap_stack: ImapStack, direction: str
) -> None:
    stack = imap_stack.stack
    org = stack.client([direction])
    address = f"m.{uuid.uuid4().hex[:8]}@client.example"
    maria = _person(stack, org, direction, address)
    message_id = make_msgid(domain="client.example")
    uid = imap_stack.append(_eml(f"Мария <{address}>", message_id))

    wait_for(lambda: bool(_interactions(stack, org)), 30, "the message to be captured")
    wait_for(lambda: "\\Seen" in imap_stack.flags(uid), 10, "the message to be flagged seen")
    [interaction] = _interactions(stack, org)
    assert interaction["kind"] == "email"
    assert interaction["direction"] == "in"
    assert interaction["source"] == "eml"
    assert interaction["subject"] == "Счёт на оплату"
    assert interaction["person_ids"] == [str(maria)]
    assert interaction["occurred_at"] == "2026-03-01T09:30:00Z"
    assert interaction["created_by"] == "imap-test"
    attachments = httpx.get(
        f"{stack.url}/v1/interactions/{interaction['id']}/attachments", headers=stack.admin
    ).json()
    assert [a["filename"] for a in attachments] == ["счёт.pdf"]
    download = httpx.get(
        f"{stack.url}/v1/interactions/{interaction['id']}/attachments/{attachments[0]['id']}",
        headers=stack.admin,
    )
    assert download.content == PDF

    # A crash between the commit and the \Seen flag leaves the message unseen: the next polls
    # fetch it again, and the Message-ID dedup settles it without a second interaction.
    imap_stack.unflag_seen(uid)
    wait_for(lambda: "\\Seen" in imap_stack.flags(uid), 10, "the message to be settled again")
    assert "imap message captured before" in imap_stack.log()
    time.sleep(1.0)  # several more polls
    assert len(_interactions(stack, org)) == 1


def test_an_unmatched_message_is_reported_once_and_left_for_a_person(
    imap_stack: ImapStack,
) -> None:
    message_id = make_msgid(domain="nowhere.example")
    stranger = f"stranger-{uuid.uuid4().hex[:8]}@nowhere.example"
    uid = imap_stack.append(_eml(f"Stranger <{stranger}>", message_id, subject="Who are we?"))
    wait_for(
        lambda: "$ClienteleUnmatched" in imap_stack.flags(uid), 30, "the message to be flagged"
    )
    assert "\\Seen" not in imap_stack.flags(uid), "left unread for a person"
    time.sleep(1.5)  # several more polls
    reports = [
        line
        for line in imap_stack.log().splitlines()
        if "imap message unmatched" in line and message_id in line
    ]
    assert len(reports) == 1, reports
    assert stranger in reports[0]

    # kept as a record for a person to resolve: no interaction, so only dismissing helps
    stack = imap_stack.stack
    url = f"{stack.url}/v1/unmatched-addresses"
    [item] = httpx.get(url, params={"address": stranger}, headers=stack.admin).json()
    assert item["interaction_id"] is None
    assert item["candidates"] == []
    assert item["mailbox"].endswith(f"/{imap_stack.mailbox}")
    assert (item["display_name"], item["role"], item["subject"]) == (
        "Stranger",
        "from",
        "Who are we?",
    )
    assert item["message_id"] == message_id
    sales = bearer(stack.issuer, "alice", directions=["north"])
    assert httpx.get(url, params={"address": stranger}, headers=sales).json() == []
    linked = httpx.post(
        f"{url}/{item['id']}/link", json={"person_id": str(uuid.uuid4())}, headers=stack.admin
    )
    assert linked.status_code == 409
    dismissed = httpx.post(f"{url}/{item['id']}/dismiss", headers=stack.admin)
    assert dismissed.status_code == 200, dismissed.text
    assert dismissed.json()["status"] == "dismissed"
    assert httpx.get(url, params={"address": stranger}, headers=stack.admin).json() == []


def test_bad_credentials_are_logged_and_the_service_stays_ready(
    service_env: dict[str, str],
    interactions_migrated: str,
    imap_server: ImapServer,
    tmp_path: Path,
) -> None:
    env = _env(
        service_env,
        interactions_migrated,
        tmp_path / "attachments",
        imap_server,
        IMAP_PASSWORD="not-the-password",
    )
    process = ServiceProcess("interactions", env, tmp_path, VENV_BIN)
    try:
        wait_for(process.ready, 60, "interactions to be ready")
        wait_for(
            lambda: process.log.read_text(errors="replace").count("imap poll failed") >= 2,
            30,
            "two failed polls",
        )
        log = process.log.read_text(errors="replace")
        assert "LOGIN" in log or "AUTHENTICATIONFAILED" in log
        assert "not-the-password" not in log
        assert process.ready()
    finally:
        process.stop()
