"""The IMAP poller: mail in a mailbox becomes interactions, as an uploaded .eml would.

Every ``IMAP_POLL_INTERVAL`` seconds it logs in (stdlib ``imaplib`` in a worker thread), selects
``IMAP_MAILBOX`` and searches unseen messages by UID, skipping those it flagged before. Each one
is fetched with ``BODY.PEEK[]`` (the fetch itself never sets \\Seen) and captured through
:func:`capture_message` — the same matching, Message-ID dedup per client and events as the upload
endpoint — and only after that transaction commits is it flagged \\Seen (and moved to
``IMAP_DONE_MAILBOX`` when set). A crash in between leaves it unseen: the next poll captures it
again, the dedup answers "already captured", and it is settled then. At-least-once delivery and
the dedup give exactly-once capture for messages with a Message-ID.

Unknown addresses of a captured message are kept as unmatched records
(``/v1/unmatched-addresses``). A message whose persons work at no client (or at several) keeps its
unknown addresses as records without an interaction, is logged and flagged
``$ClienteleUnmatched``; one that cannot be captured at all (unreadable, too large, refused) is
flagged ``$ClienteleRejected``. Both stay unseen for a person to handle and are not
fetched again; removing the keyword retries. Failures of the server or the login are logged and
the next poll tries again: the service itself keeps running and stays ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field

from clientele_shared.auth.principal import Principal
from clientele_shared.http.problems import ProblemError
from clientele_shared.observability import get_logger
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.storage import AttachmentStorage

from clientele_interactions.capture import service
from clientele_interactions.capture.parsing import UnreadableMessage
from clientele_interactions.capture.rules import AlreadyCaptured, ClientNotDetermined
from clientele_interactions.clock import Clock
from clientele_interactions.log.rules import CounterpartyBlocked, Rejected
from clientele_interactions.settings import InteractionsSettings

log = get_logger(__name__)

UNMATCHED = "$ClienteleUnmatched"
REJECTED = "$ClienteleRejected"
SEARCH = f"UNSEEN UNKEYWORD {UNMATCHED} UNKEYWORD {REJECTED}"
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


class ImapFailure(Exception):
    """The server refused a command."""


@dataclass
class PollReport:
    """What one poll did, by UID."""

    captured: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    unmatched: list[int] = field(default_factory=list)
    rejected: list[int] = field(default_factory=list)


def quote(mailbox: str) -> str:
    """A mailbox name as an IMAP quoted string."""
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ok(result: tuple[str, Sequence[object]], what: str) -> list[object]:
    status, data = result
    if status != "OK":
        raise ImapFailure(f"{what}: {status} {data!r}")
    return list(data)


class ImapMailbox:
    """One blocking IMAP session (every method runs in a worker thread)."""

    def __init__(self, settings: InteractionsSettings) -> None:
        self.settings = settings
        self.conn: imaplib.IMAP4 | None = None
        self.can_move = False

    def _context(self) -> ssl.SSLContext:
        ca = str(self.settings.imap_ca_file) if self.settings.imap_ca_file else None
        context = ssl.create_default_context(cafile=ca)
        if not self.settings.imap_validate_certs:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def open(self) -> None:
        s = self.settings
        assert s.imap_host is not None
        port = s.imap_port or (993 if s.imap_security == "ssl" else 143)
        conn: imaplib.IMAP4
        if s.imap_security == "ssl":
            conn = imaplib.IMAP4_SSL(
                s.imap_host, port, ssl_context=self._context(), timeout=s.imap_timeout
            )
        else:
            conn = imaplib.IMAP4(s.imap_host, port, timeout=s.imap_timeout)
        self.conn = conn
        if s.imap_security == "starttls":
            _ok(conn.starttls(self._context()), "STARTTLS")
        password = s.imap_password.get_secret_value() if s.imap_password else ""
        _ok(conn.login(s.imap_username or "", password), "LOGIN")
        capabilities = _ok(conn.capability(), "CAPABILITY")
        self.can_move = b"MOVE" in b" ".join(c for c in capabilities if isinstance(c, bytes))
        _ok(conn.select(quote(s.imap_mailbox)), f"SELECT {s.imap_mailbox}")

    def close(self) -> None:
        if self.conn is None:
            return
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            self.conn.logout()
        self.conn = None

    def _c(self) -> imaplib.IMAP4:
        assert self.conn is not None
        return self.conn

    def search(self) -> list[int]:
        data = _ok(self._c().uid("SEARCH", SEARCH), "SEARCH")
        first = data[0] if data and isinstance(data[0], bytes) else b""
        return sorted(int(uid) for uid in first.split())

    def size(self, uid: int) -> int | None:
        data = _ok(self._c().uid("FETCH", str(uid), "(RFC822.SIZE)"), "FETCH SIZE")
        for item in data:
            found = _SIZE.search(item if isinstance(item, bytes) else b"")
            if found:
                return int(found.group(1))
        return None

    def fetch(self, uid: int) -> bytes | None:
        data = _ok(self._c().uid("FETCH", str(uid), "(BODY.PEEK[])"), "FETCH")
        for item in data:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
                return item[1]
        return None  # expunged meanwhile

    def flag(self, uid: int, flag: str) -> None:
        _ok(self._c().uid("STORE", str(uid), "+FLAGS.SILENT", f"({flag})"), f"STORE {flag}")

    def done(self, uid: int) -> None:
        """Flag \\Seen, then move to the done mailbox when one is configured."""
        self.flag(uid, "\\Seen")
        target = self.settings.imap_done_mailbox
        if not target:
            return
        conn = self._c()
        if self.can_move:
            _ok(conn.uid("MOVE", str(uid), quote(target)), f"MOVE {target}")
        else:
            _ok(conn.uid("COPY", str(uid), quote(target)), f"COPY {target}")
            self.flag(uid, "\\Deleted")
            _ok(conn.expunge(), "EXPUNGE")


class ImapPoller:
    def __init__(
        self,
        settings: InteractionsSettings,
        runtime: ServiceRuntime,
        storage: AttachmentStorage,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.storage = storage
        self.clock = clock
        self.principal = Principal(
            subject=settings.imap_actor, kind="service", service="interactions"
        )
        self.origin = f"imap://{settings.imap_username or ''}@{settings.imap_host}/"
        self.origin += settings.imap_mailbox

    async def run(self) -> None:
        """Poll until cancelled; a failed poll is logged and the next one tries again."""
        while True:
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except (imaplib.IMAP4.error, ImapFailure, OSError) as exc:
                log.error(
                    "imap poll failed",
                    host=self.settings.imap_host,
                    mailbox=self.settings.imap_mailbox,
                    username=self.settings.imap_username,
                    error=f"{type(exc).__name__}: {exc}",
                )
            except Exception:
                log.exception("imap poll failed", host=self.settings.imap_host)
            await asyncio.sleep(self.settings.imap_poll_interval)

    async def poll(self) -> PollReport:
        """One pass over the mailbox: at most ``IMAP_BATCH`` messages."""
        box = ImapMailbox(self.settings)
        report = PollReport()
        try:
            await asyncio.to_thread(box.open)
            uids = await asyncio.to_thread(box.search)
            for uid in uids[: self.settings.imap_batch]:
                await self._one(box, uid, report)
        finally:
            await asyncio.to_thread(box.close)
        if uids:
            log.info(
                "imap poll",
                mailbox=self.settings.imap_mailbox,
                captured=len(report.captured),
                duplicates=len(report.duplicates),
                unmatched=len(report.unmatched),
                rejected=len(report.rejected),
            )
        return report

    async def _one(self, box: ImapMailbox, uid: int, report: PollReport) -> None:
        size = await asyncio.to_thread(box.size, uid)
        if size is not None and size > self.settings.email_max_bytes:
            await self._reject(box, uid, report, f"{size} bytes, over EMAIL_MAX_BYTES")
            return
        raw = await asyncio.to_thread(box.fetch, uid)
        if raw is None:
            return
        try:
            message = await service.read_message(self.settings, None, raw)
        except UnreadableMessage as exc:
            await self._reject(box, uid, report, str(exc))
            return
        try:
            captured = await service.capture_message(
                runtime=self.runtime,
                storage=self.storage,
                settings=self.settings,
                principal=self.principal,
                message=message,
                now=self.clock.now(),
                origin=f"{self.origin} uid {uid}",
                default_employee_id=self.settings.imap_employee_id,
                mailbox=self.origin,
            )
        except AlreadyCaptured as exc:
            log.info(
                "imap message captured before",
                uid=uid,
                message_id=message.message_id,
                interaction_id=str(exc.interaction_id),
            )
            await asyncio.to_thread(box.done, uid)
            report.duplicates.append(uid)
            return
        except ClientNotDetermined as exc:
            log.warning(
                "imap message unmatched",
                uid=uid,
                mailbox=self.settings.imap_mailbox,
                message_id=message.message_id,
                subject=message.subject,
                sender=message.sender.address if message.sender else None,
                unknown_addresses=exc.unknown_addresses,
                candidates=[str(c) for c in exc.candidates],
            )
            await service.record_uncaptured(
                runtime=self.runtime,
                principal=self.principal,
                message=message,
                refused=exc,
                mailbox=self.origin,
            )
            await asyncio.to_thread(box.flag, uid, UNMATCHED)
            report.unmatched.append(uid)
            return
        except ProblemError as exc:
            await self._reject(box, uid, report, exc.detail or exc.title)
            return
        except (CounterpartyBlocked, Rejected) as exc:
            await self._reject(box, uid, report, str(exc))
            return
        log.info(
            "imap message captured",
            uid=uid,
            message_id=message.message_id,
            interaction_id=str(captured.interaction.id),
            organization_id=str(captured.interaction.organization_id),
            unknown_addresses=captured.unknown_addresses,
        )
        await asyncio.to_thread(box.done, uid)
        report.captured.append(uid)

    async def _reject(self, box: ImapMailbox, uid: int, report: PollReport, reason: str) -> None:
        log.warning(
            "imap message rejected", uid=uid, mailbox=self.settings.imap_mailbox, reason=reason
        )
        await asyncio.to_thread(box.flag, uid, REJECTED)
        report.rejected.append(uid)
