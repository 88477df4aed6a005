"""Feedback-loop reports (ARF, RFC 5965): which of our e-mails a recipient reported as spam
(no I/O)."""

from __future__ import annotations

import re
import uuid
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.parser import HeaderParser

COMPLAINTS = frozenset({"abuse", "fraud"})
"""Feedback types that are a complaint about the message (not ``not-spam``, ``virus``...)."""
_MESSAGE_ID = re.compile(r"<([0-9a-fA-F-]{36})@([^>\s]+)>")


class ReportInvalid(ValueError):
    """Not a feedback report about one of our messages."""


def _text(part: Message) -> str:
    raw = part.get_payload(decode=True)
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""


def _original_headers(report: Message) -> Message | None:
    for part in report.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        if kind == "text/rfc822-headers":
            return HeaderParser(policy=policy.default).parsestr(_text(part))
    return None


def _feedback_type(report: Message) -> str | None:
    for part in report.walk():
        if part.get_content_type() != "message/feedback-report":
            continue
        payload = part.get_payload()
        fields = payload[0] if isinstance(payload, list) and payload else None
        if isinstance(fields, Message):
            value = fields.get("Feedback-Type")
        else:
            value = HeaderParser().parsestr(_text(part)).get("Feedback-Type")
        return None if value is None else str(value).strip().lower()
    return None


def complained_delivery(data: bytes, message_id_domain: str) -> uuid.UUID:
    """The delivery a feedback report complains about: the report must be a multipart/report
    of a complaint type, and name in the original's Message-ID a delivery of ours
    (``<delivery id@MESSAGE_ID_DOMAIN>``); ReportInvalid otherwise."""
    report = message_from_bytes(data, _class=EmailMessage, policy=policy.default)
    if report.get_content_type() != "multipart/report":
        raise ReportInvalid("not a multipart/report")
    feedback = _feedback_type(report)
    if feedback is None:
        raise ReportInvalid("no message/feedback-report part with a Feedback-Type")
    if feedback not in COMPLAINTS:
        raise ReportInvalid(f"feedback type {feedback!r} is no complaint")
    original = _original_headers(report)
    if original is None:
        raise ReportInvalid("the report does not include the original message or its headers")
    match = _MESSAGE_ID.fullmatch(str(original.get("Message-ID", "")).strip())
    if match is None or match.group(2).lower() != message_id_domain.lower():
        raise ReportInvalid("the original message is not one the notifier sent")
    return uuid.UUID(match.group(1))
