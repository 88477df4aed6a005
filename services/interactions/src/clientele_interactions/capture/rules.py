"""E-mail capture's rules: who is who among a message's addresses, when the contact happened,
why a message is not captured, and what capturing answers (pure)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from clientele_shared.http.problems import Conflict, ProblemError
from pydantic import BaseModel

from clientele_interactions.attachments.rules import Attachment
from clientele_interactions.capture.parsing import CapturedMessage
from clientele_interactions.clients.rules import ClientCard
from clientele_interactions.log.schemas import EARLIEST, Interaction
from clientele_interactions.unmatched.rules import UnmatchedAddress


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


class ClientNotDetermined(ProblemError):
    """No ``organization_id`` was given and the message's persons work at no client the caller
    may write about, or at several."""

    def __init__(self, candidates: list[ClientCard], unknown_addresses: list[str]) -> None:
        super().__init__(
            422,
            "Client Not Determined",
            "Pass organization_id: the message's persons work at "
            + ("no client you may write about." if not candidates else "several clients."),
            kind="client-not-determined",
            candidates=[str(c.organization_id) for c in candidates],
            unknown_addresses=unknown_addresses,
        )
        self.candidates = [c.organization_id for c in candidates]
        self.unknown_addresses = unknown_addresses


class AlreadyCaptured(Conflict):
    """The message (its Message-ID) was captured for the client already."""

    def __init__(self, interaction_id: uuid.UUID) -> None:
        super().__init__(
            "This message was captured for the client already.",
            interaction_id=str(interaction_id),
        )
        self.interaction_id = interaction_id


class AppointmentAhead(ProblemError):
    """An appointment that starts in the future: it is planned, not captured."""

    def __init__(self) -> None:
        super().__init__(
            422,
            "Appointment Not Held Yet",
            "The appointment starts in the future: plan the meeting instead of capturing it.",
            kind="appointment-not-held",
        )


def occurred_at(message: CapturedMessage, now: datetime) -> datetime:
    """When the captured contact happened: a mail's date (now when it has none, one in the
    future or one before 1900: clocks of senders are wrong), an appointment's start
    (AppointmentAhead when ahead)."""
    if message.kind == "meeting" and message.sent_at is not None:
        if message.sent_at > now + timedelta(minutes=5):
            raise AppointmentAhead()
        return min(message.sent_at, now)
    sent = message.sent_at
    return sent if sent is not None and EARLIEST <= sent <= now else now


class AddressMatch(BaseModel):
    address: str
    person_id: uuid.UUID


class SkippedAttachment(BaseModel):
    filename: str
    reason: str


class CapturedEmail(BaseModel):
    """What capturing an e-mail file answers: the interaction, its attachments, who was
    recognised, and the addresses to link or create persons for (kept as ``unmatched``
    records until resolved)."""

    interaction: Interaction
    attachments: list[Attachment]
    matched: list[AddressMatch]
    unknown_addresses: list[str]
    unmatched: list[UnmatchedAddress]
    skipped_attachments: list[SkippedAttachment]
