"""Reading captured e-mail: RFC 5322 ``.eml`` (stdlib ``email``) and Outlook ``.msg``
(``extract-msg``) into one shape; deciding who is who (pure: works on bytes in memory)."""

from __future__ import annotations

import email
import email.policy
import email.utils
import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Literal

OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
MAX_BODY = 20_000


class UnreadableMessage(ValueError):
    """The file is not an e-mail message we can read."""


@dataclass(frozen=True)
class Address:
    address: str
    """Lower case."""
    name: str | None = None


@dataclass(frozen=True)
class MessageAttachment:
    filename: str
    content_type: str
    data: bytes


@dataclass
class CapturedMessage:
    format: Literal["eml", "msg"]
    subject: str
    sender: Address | None
    to: list[Address] = field(default_factory=list)
    cc: list[Address] = field(default_factory=list)
    sent_at: datetime | None = None
    message_id: str | None = None
    body: str = ""
    attachments: list[MessageAttachment] = field(default_factory=list)

    def addresses(self) -> list[str]:
        """Every distinct address of the message: sender first."""
        people = [*([self.sender] if self.sender else []), *self.to, *self.cc]
        return list(dict.fromkeys(a.address for a in people))

    def roles(self) -> dict[str, tuple[Literal["from", "to", "cc"], str | None]]:
        """Each distinct address's first role in the message and the name written with it
        (any role's, when the first had none)."""
        found: dict[str, tuple[Literal["from", "to", "cc"], str | None]] = {}
        people: list[tuple[Literal["from", "to", "cc"], Address]] = []
        if self.sender:
            people.append(("from", self.sender))
        people += [("to", a) for a in self.to]
        people += [("cc", a) for a in self.cc]
        for role, person in people:
            known = found.get(person.address)
            if known is None:
                found[person.address] = (role, person.name or None)
            elif known[1] is None and person.name:
                found[person.address] = (known[0], person.name)
        return found


def _addresses(values: Iterable[str]) -> list[Address]:
    found: list[Address] = []
    for name, address in email.utils.getaddresses([v for v in values if v]):
        address = address.strip().lower()
        if "@" in address:
            found.append(Address(address, name.strip() or None))
    return list({a.address: a for a in found}.values())


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _clean_id(value: Any) -> str | None:
    text = str(value).strip() if value else ""
    return text[:998] or None


def parse_eml(data: bytes) -> CapturedMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    if not isinstance(message, EmailMessage) or not (message["From"] or message["To"]):
        raise UnreadableMessage("not an e-mail message: it has neither From nor To")
    sender = _addresses([str(message["From"] or "")])
    try:
        sent_at = _aware(email.utils.parsedate_to_datetime(str(message["Date"])))
    except (TypeError, ValueError, IndexError):
        sent_at = None
    body_part = message.get_body(preferencelist=("plain", "html"))
    body = ""
    if body_part is not None:
        try:
            body = str(body_part.get_content())
        except (LookupError, ValueError):
            body = ""
    attachments = []
    for part in message.iter_attachments():
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            attachments.append(
                MessageAttachment(
                    part.get_filename() or "attachment", part.get_content_type(), payload
                )
            )
    return CapturedMessage(
        format="eml",
        subject=str(message["Subject"] or "").strip(),
        sender=sender[0] if sender else None,
        to=_addresses(message.get_all("To", [])),
        cc=_addresses(message.get_all("Cc", [])),
        sent_at=sent_at,
        message_id=_clean_id(message["Message-ID"]),
        body=body[:MAX_BODY],
        attachments=attachments,
    )


def parse_msg(data: bytes) -> CapturedMessage:
    import extract_msg

    logging.getLogger("extract_msg").setLevel(logging.ERROR)
    try:
        message: Any = extract_msg.openMsg(data, strict=False, delayAttachments=False)
    except Exception as exc:  # extract-msg raises many kinds for broken files
        raise UnreadableMessage(f"not an Outlook message: {type(exc).__name__}") from None
    try:
        sender = _addresses([str(message.sender or "")])
        recipients = getattr(message, "recipients", [])
        to = [r for r in recipients if int(getattr(r, "type", 1) or 1) == 1]
        cc = [r for r in recipients if int(getattr(r, "type", 1) or 1) == 2]
        attachments = []
        for item in getattr(message, "attachments", []):
            payload = getattr(item, "data", None)
            if isinstance(payload, bytes):
                attachments.append(
                    MessageAttachment(
                        item.longFilename or item.shortFilename or "attachment",
                        item.mimetype or "application/octet-stream",
                        payload,
                    )
                )
        date = message.date if isinstance(message.date, datetime) else None
        return CapturedMessage(
            format="msg",
            subject=str(message.subject or "").strip(),
            sender=sender[0] if sender else None,
            to=_addresses(_recipient_text(r) for r in to),
            cc=_addresses(_recipient_text(r) for r in cc),
            sent_at=_aware(date),
            message_id=_clean_id(getattr(message, "messageId", None)),
            body=str(message.body or "")[:MAX_BODY],
            attachments=attachments,
        )
    finally:
        message.close()


def _recipient_text(recipient: Any) -> str:
    name = getattr(recipient, "name", None) or ""
    address = getattr(recipient, "email", None) or ""
    return email.utils.formataddr((name, address)) if address else ""


def parse_message(filename: str | None, data: bytes) -> CapturedMessage:
    """An ``.msg`` (an OLE compound file) or an ``.eml``, told apart by content."""
    if not data:
        raise UnreadableMessage("the file is empty")
    if data.startswith(OLE_SIGNATURE):
        return parse_msg(data)
    if (filename or "").lower().endswith(".msg"):
        raise UnreadableMessage("not an Outlook message: no compound file signature")
    return parse_eml(data)


# --- who is who ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Matching:
    person_ids: list[Any]
    """Persons found among the message's addresses, in the order of the addresses."""
    matched: dict[str, Any]
    """address -> person id."""
    unknown: list[str]
    """Addresses that are neither a known person nor the company's own."""
    direction: Literal["in", "out"]
    employee_id: Any | None = None
    """The first of the company's employees among the addresses (the sender when ours)."""


def own_address(address: str, own_domains: Iterable[str]) -> bool:
    domain = address.rpartition("@")[2]
    return any(domain == d.lower() or domain.endswith("." + d.lower()) for d in own_domains)


def match_addresses(
    message: CapturedMessage,
    persons_by_address: Mapping[str, Sequence[Any]],
    own_domains: Iterable[str],
    *,
    preferred: Collection[Any] = (),
    employees_by_address: Mapping[str, Any] | None = None,
) -> Matching:
    """One person per known address (one of ``preferred``, those working at the client, when
    an address belongs to several persons); the company's employees and own domains are ours.
    A message from ours went out, any other came in."""
    own = list(own_domains)
    staff = employees_by_address or {}
    matched: dict[str, Any] = {}
    for address in message.addresses():
        candidates = list(persons_by_address.get(address, ()))
        if candidates and address not in staff:
            at_client = [p for p in candidates if p in preferred]
            matched[address] = (at_client or candidates)[0]

    def ours(address: str) -> bool:
        return address in staff or own_address(address, own)

    unknown = [a for a in message.addresses() if a not in matched and not ours(a)]
    sender = message.sender.address if message.sender else None
    outgoing = sender is not None and sender not in matched and ours(sender)
    employee = next((staff[a] for a in message.addresses() if a in staff), None)
    return Matching(
        person_ids=list(dict.fromkeys(matched.values())),
        matched=matched,
        unknown=unknown,
        direction="out" if outgoing else "in",
        employee_id=employee,
    )
