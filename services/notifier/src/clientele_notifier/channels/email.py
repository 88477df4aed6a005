"""E-mail over SMTP (aiosmtplib): message building and a small pool of SMTP connections."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import uuid
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib
import httpx
from clientele_shared.events.schemas.notifications import AttachmentRef
from clientele_shared.observability import get_logger

from clientele_notifier.deliveries.rules import Content, Outcome, SendResult
from clientele_notifier.settings import NotifierSettings

log = get_logger(__name__)


class AttachmentError(Exception):
    """An attachment could not be loaded (a permanent failure when the reference is bad)."""

    def __init__(self, detail: str, *, transient: bool) -> None:
        super().__init__(detail)
        self.transient = transient


def build_message(
    *,
    delivery_id: uuid.UUID,
    sender: str,
    to: str,
    to_name: str | None,
    content: Content,
    reply_to: str | None,
    list_unsubscribe: str | None,
    attachments: list[tuple[str, str, bytes]],
    message_id_domain: str,
) -> EmailMessage:
    """A MIME message: text part, optional HTML alternative, attachments.

    The Message-ID is derived from the delivery id, so a message sent again after a lost SMTP
    answer carries the same id and receivers that deduplicate by it see one message.
    """
    message = EmailMessage()
    message["Message-ID"] = f"<{delivery_id}@{message_id_domain}>"
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["From"] = sender
    message["To"] = Address(display_name=to_name or "", addr_spec=to)
    message["Subject"] = content.subject
    if reply_to:
        message["Reply-To"] = reply_to
    if list_unsubscribe:
        message["List-Unsubscribe"] = f"<{list_unsubscribe}>"
        if list_unsubscribe.startswith("https://"):
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["X-Clientele-Delivery"] = str(delivery_id)
    message.set_content(content.text or " ")
    if content.html:
        message.add_alternative(content.html, subtype="html")
    for filename, content_type, data in attachments:
        maintype, _, subtype = content_type.partition("/")
        message.add_attachment(
            data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=filename,
        )
    return message


async def load_attachments(
    refs: list[AttachmentRef], client: httpx.AsyncClient, max_bytes: int
) -> list[tuple[str, str, bytes]]:
    loaded: list[tuple[str, str, bytes]] = []
    total = 0
    for ref in refs:
        if ref.content_base64 is not None:
            try:
                data = base64.b64decode(ref.content_base64, validate=True)
            except ValueError:
                raise AttachmentError(f"{ref.filename}: invalid base64", transient=False) from None
        else:
            assert ref.url is not None
            try:
                response = await client.get(ref.url, timeout=30)
            except httpx.HTTPError as exc:
                raise AttachmentError(f"{ref.filename}: {exc!r}", transient=True) from exc
            if response.status_code >= 500:
                raise AttachmentError(
                    f"{ref.filename}: HTTP {response.status_code}", transient=True
                )
            if response.status_code != 200:
                raise AttachmentError(
                    f"{ref.filename}: HTTP {response.status_code}", transient=False
                )
            data = response.content
        total += len(data)
        if total > max_bytes:
            raise AttachmentError("attachments exceed the size limit", transient=False)
        loaded.append((ref.filename, ref.content_type, data))
    return loaded


def classify(exc: Exception) -> SendResult:
    """Map an SMTP error to an outcome: 5xx for the recipient bounces, other 5xx fail, the rest
    (4xx, connection loss, timeouts) is transient."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [refused.code for refused in exc.recipients]
        detail = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
        if codes and all(code >= 500 for code in codes):
            return SendResult(Outcome.BOUNCED, detail)
        return SendResult(Outcome.RETRY, detail)
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
        outcome = Outcome.BOUNCED if exc.code >= 500 else Outcome.RETRY
        return SendResult(outcome, f"{exc.code} {exc.message}")
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return SendResult(Outcome.RETRY, f"authentication failed: {exc.code} {exc.message}")
    if isinstance(exc, aiosmtplib.SMTPResponseException) and not isinstance(
        exc, aiosmtplib.SMTPServerDisconnected
    ):
        outcome = Outcome.FAILED if exc.code >= 500 else Outcome.RETRY
        return SendResult(outcome, f"{exc.code} {exc.message}")
    return SendResult(Outcome.RETRY, repr(exc)[:1000])


class SmtpPool:
    """Up to ``size`` open SMTP connections, reused between messages."""

    def __init__(self, settings: NotifierSettings, size: int) -> None:
        self.settings = settings
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(size)
        self._tls = self._tls_context()

    def _tls_context(self) -> ssl.SSLContext | None:
        if self.settings.smtp_security == "none":
            return None
        context = ssl.create_default_context(cafile=self.settings.smtp_ca_file)
        if not self.settings.smtp_validate_certs:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            timeout=s.smtp_timeout,
            use_tls=s.smtp_security == "ssl",
            start_tls=s.smtp_security == "starttls",
            validate_certs=s.smtp_validate_certs,
            tls_context=self._tls,
        )

    async def send(self, message: EmailMessage) -> SendResult:
        async with self._slots:
            client = self._idle.pop() if self._idle else self._client()
            try:
                if not client.is_connected:
                    await client.connect()
                await client.send_message(message)
            except Exception as exc:
                with contextlib.suppress(Exception):
                    client.close()
                result = classify(exc)
                if result.outcome is Outcome.RETRY and isinstance(
                    exc, aiosmtplib.SMTPServerDisconnected
                ):
                    # an idle connection the server closed: one fresh try at once
                    return await self._send_fresh(message)
                return result
            self._idle.append(client)
            return SendResult(Outcome.SENT, "250 accepted")

    async def _send_fresh(self, message: EmailMessage) -> SendResult:
        client = self._client()
        try:
            await client.connect()
            await client.send_message(message)
        except Exception as exc:
            with contextlib.suppress(Exception):
                client.close()
            return classify(exc)
        self._idle.append(client)
        return SendResult(Outcome.SENT, "250 accepted")

    async def close(self) -> None:
        while self._idle:
            client = self._idle.pop()
            with contextlib.suppress(Exception):
                await client.quit()
