"""Reading captured e-mail: RFC 5322 ``.eml`` (stdlib ``email``) and Outlook ``.msg``
(``extract-msg``) into one shape (pure: works on bytes in memory; CPU-bound, so the service runs
:func:`parse_message` in a worker process)."""

from __future__ import annotations

import codecs
import email
import email.policy
import email.utils
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from html.parser import HTMLParser
from typing import Any, Literal

from email_validator import EmailNotValidError, validate_email

OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
MAX_BODY = 20_000


class UnreadableMessage(ValueError):
    """The file is not an e-mail message we can read."""


class NotMail(UnreadableMessage):
    """An Outlook item that is neither mail nor an appointment (a contact, task, sticky note)."""


@dataclass(frozen=True)
class ParseLimits:
    """Bounds on what one file may hold: beyond them it is refused (UnreadableMessage)."""

    max_parts: int = 1_000
    """MIME parts of an .eml, attachments of a .msg."""
    max_recipients: int = 5_000
    max_depth: int = 30
    """Nesting of multiparts in an .eml."""


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
    refused: str | None = None
    """Why the attachment cannot be kept (then ``data`` is empty)."""


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
    kind: Literal["email", "meeting"] = "email"
    """A meeting: an Outlook appointment (``sent_at`` is its start)."""

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

    def dedup_key(self) -> str:
        """The Message-ID, or for mail without one a digest of its content (sender,
        recipients, time, subject, body, attachments): the same mail is captured once."""
        if self.message_id:
            return self.message_id
        content = [
            self.kind,
            self.addresses(),
            self.sent_at.isoformat() if self.sent_at else None,
            self.subject,
            self.body,
            [hashlib.sha256(a.data).hexdigest() for a in self.attachments],
        ]
        digest = hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()
        return f"sha256:{digest}"


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
"""NUL (PostgreSQL refuses it in text) and lone surrogates (not encodable)."""


def clean_text(value: Any) -> str:
    """Text fit to store: without NUL characters and lone surrogates."""
    return _UNSTORABLE.sub("", str(value)) if value else ""


def valid_address(value: str) -> str | None:
    """The address in lower case when it is a syntactically valid one, else None (a display
    name such as ``Tests Chang@FT`` or an Exchange X.500 address is none)."""
    candidate = clean_text(value).strip()
    if not candidate or len(candidate) > 320:
        return None
    try:
        checked = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError:
        return None
    return candidate.lower() if checked.normalized.lower() == candidate.lower() else None


def _addresses(values: Iterable[str]) -> list[Address]:
    found: list[Address] = []
    for name, raw in email.utils.getaddresses([clean_text(v) for v in values if v]):
        address = valid_address(raw)
        if address is not None:
            found.append(Address(address, clean_text(name).strip() or None))
    return list({a.address: a for a in found}.values())


def _aware(value: datetime | None) -> datetime | None:
    if not isinstance(value, datetime) or value.year >= 4500:  # 4500-12-31: MAPI's "no date"
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _clean_id(value: Any) -> str | None:
    text = clean_text(value).strip()
    return text[:998] or None


class _TextOfHtml(HTMLParser):
    """The text of an HTML document: scripts, styles and tags dropped, blocks on lines."""

    BLOCKS = frozenset(
        {"br", "p", "div", "li", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "hr"}
    )
    HIDDEN = frozenset({"script", "style", "head", "title", "template", "noscript"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def html_text(html: str) -> str:
    """Plain text of an HTML body (no markup is kept: notes are text)."""
    parser = _TextOfHtml()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# --- .eml ------------------------------------------------------------------------------------


def _check_structure(message: Message, limits: ParseLimits) -> None:
    """Count parts and nesting without recursion (the stdlib's walk recurses)."""
    stack: list[tuple[Message, int]] = [(message, 1)]
    parts = 0
    while stack:
        part, depth = stack.pop()
        parts += 1
        if parts > limits.max_parts:
            raise UnreadableMessage(f"more than {limits.max_parts} parts")
        if depth > limits.max_depth:
            raise UnreadableMessage(f"parts nested more than {limits.max_depth} deep")
        payload = part.get_payload()
        if isinstance(payload, list):
            stack.extend((child, depth + 1) for child in payload if isinstance(child, Message))


def _eml_body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = str(part.get_content())
    except (LookupError, ValueError):
        return ""
    return html_text(content) if part.get_content_type() == "text/html" else content


def _eml_attachments(message: EmailMessage) -> Iterator[MessageAttachment]:
    for part in message.iter_attachments():
        kind = part.get_content_type()
        name = clean_text(part.get_filename())
        inner = part.get_payload(0) if kind == "message/rfc822" and part.is_multipart() else None
        if isinstance(inner, Message):
            subject = clean_text(inner["Subject"]).strip() if inner["Subject"] else ""
            data = inner.as_bytes(policy=email.policy.compat32)
            yield MessageAttachment(name or f"{subject or 'message'}.eml", kind, data)
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            yield MessageAttachment(name or "attachment", kind, payload)
        else:
            yield MessageAttachment(name or "attachment", kind, b"", "the part holds no file")


def parse_eml(data: bytes, limits: ParseLimits | None = None) -> CapturedMessage:
    limits = limits or ParseLimits()
    try:
        message = email.message_from_bytes(data, policy=email.policy.default)
    except RecursionError:
        raise UnreadableMessage(f"parts nested more than {limits.max_depth} deep") from None
    if not isinstance(message, EmailMessage) or not (message["From"] or message["To"]):
        raise UnreadableMessage("not an e-mail message: it has neither From nor To")
    _check_structure(message, limits)
    to = _addresses(message.get_all("To", []))
    cc = _addresses(message.get_all("Cc", []))
    if len(to) + len(cc) > limits.max_recipients:
        raise UnreadableMessage(f"more than {limits.max_recipients} recipients")
    sender = _addresses([str(message["From"] or "")])
    try:
        sent_at = _aware(email.utils.parsedate_to_datetime(str(message["Date"])))
    except (TypeError, ValueError, IndexError):
        sent_at = None
    return CapturedMessage(
        format="eml",
        subject=clean_text(message["Subject"]).strip(),
        sender=sender[0] if sender else None,
        to=to,
        cc=cc,
        sent_at=sent_at,
        message_id=_clean_id(message["Message-ID"]),
        body=clean_text(_eml_body(message))[:MAX_BODY],
        attachments=list(_eml_attachments(message)),
    )


# --- .msg ------------------------------------------------------------------------------------

NOT_MAIL_CLASSES = {
    "ipm.contact": "a contact",
    "ipm.distlist": "a contact group",
    "ipm.task": "a task",
    "ipm.taskrequest": "a task request",
    "ipm.stickynote": "a sticky note",
    "ipm.activity": "a journal entry",
}
"""Outlook item classes (PR_MESSAGE_CLASS, and their subclasses) that are not mail."""

_LCID_CODEPAGES = {
    1049: 1251, 1058: 1251, 1059: 1251, 1087: 1251, 1088: 1251, 1026: 1251, 1071: 1251,
    1029: 1250, 1038: 1250, 1045: 1250, 1050: 1250, 1051: 1250, 1060: 1250, 1048: 1250,
    1032: 1253, 1055: 1254, 1037: 1255, 1025: 1256, 1061: 1257, 1062: 1257, 1063: 1257,
    1066: 1258, 1054: 874, 1041: 932, 2052: 936, 1042: 949, 1028: 950, 3076: 950,
}  # fmt: skip
"""Windows ANSI code page of a locale (PR_MESSAGE_LOCALE_ID), for messages that name none."""

_CODEPAGE_CODECS = {
    20127: None,  # US-ASCII: the library's default decoding reads it already
    1200: None,
    1201: None,
    65001: "utf-8",
    20866: "koi8_r",
    21866: "koi8_u",
    50220: "iso2022_jp",
    51932: "euc_jp",
    52936: "hz",
    54936: "gb18030",
}


def _codec(codepage: Any) -> str | None:
    """The Python codec of a Windows code page number, None when unknown or needless."""
    if not isinstance(codepage, int) or codepage <= 0:
        return None
    if codepage in _CODEPAGE_CODECS:
        return _CODEPAGE_CODECS[codepage]
    name = f"iso8859_{codepage - 28590}" if 28591 <= codepage <= 28606 else f"cp{codepage}"
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _prop(item: Any, tag: str) -> Any:
    found = item.props.get(tag) if getattr(item, "props", None) is not None else None
    return getattr(found, "value", None) if found is not None else None


def _string(item: Any, tag: str) -> str:
    """A string property (PT_UNICODE or PT_STRING8 as the file has it), cleaned."""
    try:
        return clean_text(item.getStringStream(f"__substg1.0_{tag}")).strip()
    except Exception:  # a broken stream reads as absent
        return ""


def _message_codec(message: Any) -> str | None:
    """The code page an ANSI (non-Unicode) message's strings are written in: PR_MESSAGE_CODEPAGE,
    PR_INTERNET_CPID, else the one of PR_MESSAGE_LOCALE_ID."""
    if getattr(message, "areStringsUnicode", True):
        return None
    for tag in ("3FFD0003", "3FDE0003"):
        codec = _codec(_prop(message, tag))
        if codec is not None:
            return codec
    return _codec(_LCID_CODEPAGES.get(_prop(message, "3FF10003") or 0))


def _msg_sender(message: Any) -> list[Address]:
    """The sender's SMTP address: PR_SENDER_SMTP_ADDRESS, PR_SENT_REPRESENTING_SMTP_ADDRESS,
    the sender address when its type is SMTP (an Exchange EX address is none), else the From
    of the transport headers."""
    name = _string(message, "0C1A") or _string(message, "0042") or None
    candidates = [_string(message, "5D01"), _string(message, "5D02")]
    if _string(message, "0C1E").upper() == "SMTP":
        candidates.append(_string(message, "0C1F"))
    if _string(message, "0064").upper() == "SMTP":
        candidates.append(_string(message, "0065"))
    for candidate in candidates:
        address = valid_address(candidate)
        if address is not None:
            return [Address(address, name)]
    try:
        header = message.sender
    except Exception:  # extract-msg reads headers lazily and may fail on broken ones
        header = None
    return _addresses([str(header or "")])


def _recipient_text(recipient: Any) -> str:
    """``name <address>`` of a recipient: its SMTP address (PR_SMTP_ADDRESS, the SMTP proxy of
    an Exchange recipient), else its address when that is an SMTP one."""
    name = clean_text(getattr(recipient, "name", None)).strip()
    for candidate in (_string(recipient, "39FE"), clean_text(getattr(recipient, "email", None))):
        address = valid_address(candidate)
        if address is not None:
            return email.utils.formataddr((name, address))
    return ""


def _msg_time(message: Any, kind: str) -> datetime | None:
    """An appointment's start; a mail's date (transport header, else submit or delivery time),
    else when the item was created."""
    if kind == "meeting":
        for value in (getattr(message, "appointmentStartWhole", None), _prop(message, "00600040")):
            if _aware(value) is not None:
                return _aware(value)
    try:
        date = message.date
    except Exception:  # a broken header reads as no date
        date = None
    for value in (date, *(_prop(message, t) for t in ("00390040", "0E060040", "30070040"))):
        if _aware(value) is not None:
            return _aware(value)
    return None


def _msg_attachments(message: Any) -> Iterator[MessageAttachment]:
    for item in getattr(message, "attachments", []):
        name = clean_text(
            getattr(item, "longFilename", None)
            or getattr(item, "name", None)
            or getattr(item, "shortFilename", None)
        ).strip()
        payload = getattr(item, "data", None)
        if isinstance(payload, bytes):
            kind = getattr(item, "mimetype", None) or "application/octet-stream"
            yield MessageAttachment(name or "attachment", kind, payload)
        elif payload is not None and hasattr(payload, "exportBytes"):  # an attached message
            subject = clean_text(getattr(payload, "subject", None)).strip()
            try:
                data = payload.exportBytes()
            except Exception as exc:  # kept as skipped, with the reason
                reason = f"the attached message could not be extracted ({type(exc).__name__})"
                yield MessageAttachment(name or "message.msg", OUTLOOK, b"", reason)
                continue
            yield MessageAttachment(name or f"{subject or 'message'}.msg", OUTLOOK, data)
        else:
            reason = "not a file (a link or an embedded object)"
            yield MessageAttachment(name or "attachment", "application/octet-stream", b"", reason)


OUTLOOK = "application/vnd.ms-outlook"


def _open_msg(data: bytes, codec: str | None = None) -> Any:
    import extract_msg

    logging.getLogger("extract_msg").setLevel(logging.ERROR)
    try:
        return extract_msg.openMsg(
            data, strict=False, delayAttachments=False, overrideEncoding=codec
        )
    except Exception as exc:  # extract-msg raises many kinds for broken files
        raise UnreadableMessage(f"not an Outlook message: {type(exc).__name__}") from None


def parse_msg(data: bytes, limits: ParseLimits | None = None) -> CapturedMessage:
    limits = limits or ParseLimits()
    message: Any = _open_msg(data)
    codec = _message_codec(message)
    if codec is not None:
        message.close()
        message = _open_msg(data, codec)
    try:
        item_class = clean_text(getattr(message, "classType", None)).strip().lower()
        for prefix, what in NOT_MAIL_CLASSES.items():
            if item_class == prefix or item_class.startswith(prefix + "."):
                raise NotMail(f"{what} ({item_class}), not an e-mail or appointment")
        kind: Literal["email", "meeting"] = (
            "meeting" if item_class.startswith("ipm.appointment") else "email"
        )
        recipients = list(getattr(message, "recipients", None) or [])
        if len(recipients) > limits.max_recipients:
            raise UnreadableMessage(f"more than {limits.max_recipients} recipients")
        if len(getattr(message, "attachments", None) or []) > limits.max_parts:
            raise UnreadableMessage(f"more than {limits.max_parts} attachments")
        to = [r for r in recipients if int(getattr(r, "type", 1) or 1) == 1]
        cc = [r for r in recipients if int(getattr(r, "type", 1) or 1) == 2]
        body = clean_text(message.body)
        if not body.strip():
            html = getattr(message, "htmlBody", None)
            if isinstance(html, bytes):  # PR_HTML is written in PR_INTERNET_CPID's code page
                charset = _codec(_prop(message, "3FDE0003")) or "utf-8"
                body = clean_text(html_text(html.decode(charset, "replace")))
        sender = _msg_sender(message)
        return CapturedMessage(
            format="msg",
            subject=clean_text(message.subject).strip(),
            sender=sender[0] if sender else None,
            to=_addresses(_recipient_text(r) for r in to),
            cc=_addresses(_recipient_text(r) for r in cc),
            sent_at=_msg_time(message, kind),
            message_id=_clean_id(getattr(message, "messageId", None)),
            body=body[:MAX_BODY],
            attachments=list(_msg_attachments(message)),
            kind=kind,
        )
    finally:
        message.close()


def parse_message(
    filename: str | None, data: bytes, limits: ParseLimits | None = None
) -> CapturedMessage:
    """An ``.msg`` (an OLE compound file) or an ``.eml``, told apart by content."""
    if not data:
        raise UnreadableMessage("the file is empty")
    if data.startswith(OLE_SIGNATURE):
        return parse_msg(data, limits)
    if (filename or "").lower().endswith(".msg"):
        raise UnreadableMessage("not an Outlook message: no compound file signature")
    return parse_eml(data, limits)
