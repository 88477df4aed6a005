"""Real receivers for the notifier's tests: an SMTP server (aiosmtpd) and a webhook receiver
that verifies signatures, each in a thread of the test process."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as SmtpEnvelope
from clientele_notifier.webhooks.rules import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WEBHOOK_ID_HEADER,
    verify,
)
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.envelope import Envelope
from clientele_testkit.infra import Infrastructure
from clientele_testkit.processes import ServiceProcess, free_port
from cryptography.fernet import Fernet

WEBHOOK_SECRET = "s3cret-s3cret-s3cret-s3cret-s3cret!"
SECRETS_KEY = Fernet.generate_key().decode()
REQUESTED = "interactions.notification.requested"


class Publish(Protocol):
    """Events on their topic as a service would publish them (see conftest's Publisher)."""

    def __call__(
        self, service: str, event_type: str, payload: dict[str, Any], **envelope: Any
    ) -> Envelope: ...

    def many(self, service: str, events: list[tuple[str, dict[str, Any], str]]) -> None: ...


@dataclass
class Mailbox:
    """What the SMTP server received; ``refuse`` makes it answer RCPT with a code."""

    messages: list[EmailMessage] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    fail_next: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if address in str(m["To"])]


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: SmtpEnvelope, address: str, options: Any
    ) -> str:
        if address in self.box.refuse:
            return self.box.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: SmtpEnvelope
    ) -> str:
        with self.box.lock:
            if self.box.fail_next > 0:
                self.box.fail_next -= 1
                return "451 try again later"
            raw = envelope.original_content or b""
            message = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            self.box.messages.append(message)
        return "250 Message accepted"


class SmtpServer:
    def __init__(self) -> None:
        self.box = Mailbox()
        self.port = free_port()
        self.controller = Controller(_Handler(self.box), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.controller.stop()


@dataclass
class Received:
    delivery_id: str
    body: dict[str, Any]
    verified: bool
    at: float


class WebhookReceiver:
    """An HTTP server that checks each request's signature with ``secret``; it answers with the
    next status in ``statuses`` (then 200), or 401 for a bad signature."""

    def __init__(self, secret: str) -> None:
        self.secret = secret.encode()
        self.received: list[Received] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                ok = verify(
                    receiver.secret,
                    self.headers.get(TIMESTAMP_HEADER, ""),
                    self.headers.get(SIGNATURE_HEADER, ""),
                    body,
                    time.time(),
                )
                with receiver.lock:
                    receiver.received.append(
                        Received(
                            self.headers.get(WEBHOOK_ID_HEADER, ""),
                            json.loads(body),
                            ok,
                            time.time(),
                        )
                    )
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status if ok else 401)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def notifier_env(smtp: SmtpServer, **extra: str) -> dict[str, str]:
    return {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "WEBHOOK_SECRETS_KEY": SECRETS_KEY,
        "WEBHOOK_ALLOW_HTTP": "true",
        "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",  # the receivers of the tests
        "WORKER_POLL_INTERVAL": "0.1",
        "EMAIL_INITIAL_BACKOFF": "0.2",
        "WEBHOOK_INITIAL_BACKOFF": "0.2",
        "EMAIL_MAX_ATTEMPTS": "3",
        "WEBHOOK_MAX_ATTEMPTS": "3",
        "RETRY_MAX_BACKOFF": "1",
        "REMINDER_RECONCILE_INTERVAL": "2",
        "DELIVERY_LEASE": "10",
        "DIGEST_CHECK_INTERVAL": "0.5",
        **extra,
    }


def bearer(
    issuer: TokenIssuer, subject: str = "root", roles: tuple[str, ...] = ("admin",)
) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.mint(subject, roles=roles)}"}


def deliveries(
    notifier: ServiceProcess, issuer: TokenIssuer, key: str, requester: str = "interactions"
) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{notifier.url}/v1/deliveries",
        params={"requester": requester, "idempotency_key": key},
        headers=bearer(issuer),
    )
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    return body


class EventTail:
    """Reads a topic from its end (as of entering) in a thread: ``events`` collects what is
    published after that."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.events: list[Envelope] = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._read()), daemon=True)

    async def _read(self) -> None:
        consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap_servers,
            enable_auto_commit=False,
            auto_offset_reset="latest",
        )
        await consumer.start()
        try:
            for _ in range(600):  # without a group: every partition, once metadata is in
                if consumer.assignment():
                    break
                await asyncio.sleep(0.05)
            for tp in consumer.assignment():
                await consumer.position(tp)  # fixes "from now" before anything is published
            self.ready.set()
            while not self.stopping.is_set():
                batches = await consumer.getmany(timeout_ms=200)
                with self.lock:
                    self.events.extend(
                        Envelope.from_bytes(record.value or b"")
                        for records in batches.values()
                        for record in records
                    )
        finally:
            await consumer.stop()

    def of_type(self, event_type: str) -> list[Envelope]:
        with self.lock:
            return [event for event in self.events if event.type == event_type]

    def __enter__(self) -> EventTail:
        self.thread.start()
        assert self.ready.wait(30), f"could not read {self.topic}"
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.thread.join(10)


def known_employee(infra: Infrastructure, employee_id: str, version: int) -> bool:
    """The notifier's read model has applied the employee's event of ``version``."""

    async def read() -> Any:
        conn = await asyncpg.connect(infra.test_database_url("notifier"))
        try:
            return await conn.fetchval("SELECT version FROM employees WHERE id = $1", employee_id)
        finally:
            await conn.close()

    return asyncio.run(read()) == version
