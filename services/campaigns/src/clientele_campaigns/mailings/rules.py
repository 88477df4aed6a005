"""What a mailing is, who it goes to and who not (with why), its states, and the signed
unsubscribe token (no I/O)."""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clientele_shared.directory_read_models import OrganizationRecord, PersonRecord
from clientele_shared.events.schemas.notifications import AttachmentRef, EmailAddress
from clientele_shared.templating import MessageTemplate
from clientele_shared.values import ClockTime, Directions, Name, Title
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from clientele_campaigns.consent.rules import ConsentEntry
from clientele_campaigns.contacts.rules import Contact
from clientele_campaigns.mailings.postal import EnvelopeFormat, PostalAddress, postal_address
from clientele_campaigns.templates.rules import TemplateParts

MailingStatus = Literal["draft", "scheduled", "sending", "paused", "done", "cancelled"]
RecipientStatus = Literal[
    "excluded",
    "pending",
    "queued",
    "printed",
    "sent",
    "bounced",
    "failed",
    "complained",
    "cancelled",
]
Channel = Literal["email", "post", "fax"]
TokenPurpose = Literal["unsubscribe", "fax-document", "fax-result"]
Exclusion = Literal[
    "no_consent",
    "unsubscribed",
    "blocked_person",
    "blocked_organization",
    "unknown_person",
    "no_address",
    "missing_field",
]
TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"scheduled", "cancelled"}),
    "scheduled": frozenset({"draft", "sending", "cancelled"}),
    "sending": frozenset({"paused", "done", "cancelled"}),
    "paused": frozenset({"sending", "cancelled"}),
    "done": frozenset(),
    "cancelled": frozenset(),
}
EDITABLE_STATUSES = frozenset({"draft", "scheduled"})
Position = Name
"""A position wanted, as a part of the position held (one line, no control characters: a NUL
cannot be stored)."""
MAX_ORGANIZATIONS = 10_000


class ListAudience(BaseModel):
    """The persons of a directory list's organizations (those holding ``positions``): a static
    list's members when the mailing starts; a dynamic list resolved by the directory for the
    caller who sends it, at that moment, and kept (ADR 36)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["list"]
    list_id: uuid.UUID
    positions: list[Position] = Field(default_factory=list, max_length=50)


class StageAudience(BaseModel):
    """The participants of an event at a stage: the person of each, or the persons of its
    organization holding ``positions`` when it names none."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["event_stage"]
    campaign_id: uuid.UUID
    stage_id: uuid.UUID
    positions: list[Position] = Field(default_factory=list, max_length=50)


class OrganizationsAudience(BaseModel):
    """The persons of chosen organizations holding ``positions`` (all of them when empty)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["organizations"]
    organization_ids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_ORGANIZATIONS)
    positions: list[Position] = Field(default_factory=list, max_length=50)


Audience = Annotated[
    ListAudience | StageAudience | OrganizationsAudience, Field(discriminator="kind")
]


class GreetingDayAudience(BaseModel):
    """The recipients a greeting's sweep found due (their birthday or professional holiday
    today in their time zone), kept as the mailing's recipients (ADR 51); made by the sweep
    only, never by a draft."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["greeting"]
    greeting_id: uuid.UUID
    occasion: str


StoredAudience = Annotated[
    ListAudience | StageAudience | OrganizationsAudience | GreetingDayAudience,
    Field(discriminator="kind"),
]


class Recurrence(BaseModel):
    """A newsletter's schedule: every ``interval`` days, weeks or months, at ``at`` in
    ``time_zone`` (a monthly issue on a day the month lacks goes out on its last day)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    every: Literal["day", "week", "month"]
    interval: int = Field(default=1, ge=1, le=366)
    at: ClockTime
    time_zone: str = Field(default="Europe/Moscow", max_length=64)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ValueError, OSError, ZoneInfoNotFoundError):  # a folder of zones: OSError
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("at")
    @classmethod
    def _naive(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("give the time without an offset; time_zone says where")
        return value


def next_issue(recurrence: Recurrence, previous: datetime, anchor_day: int) -> datetime:
    """When the issue after one scheduled at ``previous`` goes out: the next day, week or month
    (``anchor_day``: the series' day of the month) at the local time ``at``."""
    zone = ZoneInfo(recurrence.time_zone)
    local = previous.astimezone(zone).date()
    if recurrence.every == "day":
        day = local + timedelta(days=recurrence.interval)
    elif recurrence.every == "week":
        day = local + timedelta(weeks=recurrence.interval)
    else:
        months = local.year * 12 + local.month - 1 + recurrence.interval
        year, month = divmod(months, 12)
        last = calendar.monthrange(year, month + 1)[1]
        day = date(year, month + 1, min(anchor_day, last))
    return datetime.combine(day, recurrence.at, tzinfo=zone)


class PostOptions(BaseModel):
    """A paper mailing's envelopes: their format and the sender's name and address (the
    address as written, with its six-digit postcode: "123456, г. Москва, ул. Ленина, д. 1")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    envelope: EnvelopeFormat = "dl"
    sender_name: Title
    sender_address: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=8, max_length=500)
    ]

    @field_validator("sender_address")
    @classmethod
    def _with_postcode(cls, value: str) -> str:
        if postal_address({"text": value}) is None:
            raise ValueError("the sender's address must start with its six-digit postcode")
        return value

    @property
    def sender(self) -> PostalAddress:
        found = postal_address({"text": self.sender_address})
        assert found is not None
        return found


class MailingDraft(BaseModel):
    """A new mailing: e-mail (the default), paper post (``post``: letters and envelopes as
    PDF) or fax."""

    model_config = ConfigDict(extra="forbid")

    title: Title
    directions: Directions = Field(min_length=1)
    channel: Channel = "email"
    post: PostOptions | None = Field(default=None, description="a paper mailing's envelopes")
    campaign_id: uuid.UUID | None = None
    template: TemplateParts | None = Field(
        default=None, description="the message; or name a stored template with template_id"
    )
    template_id: uuid.UUID | None = Field(
        default=None, description="a stored template whose newest version the mailing copies"
    )
    attachments: list[AttachmentRef] = Field(default_factory=list, max_length=20)
    reply_to: EmailAddress | None = None
    audience: Audience
    scheduled_at: AwareDatetime | None = None
    recurrence: Recurrence | None = Field(
        default=None, description="a newsletter: each issue resolves the audience anew"
    )

    @property
    def parts(self) -> TemplateParts:
        assert self.template is not None  # the service fills it from a stored template
        return self.template

    @model_validator(mode="after")
    def _first_issue(self) -> MailingDraft:
        if self.recurrence is not None and self.scheduled_at is None:
            raise ValueError("a newsletter needs scheduled_at, its first issue")
        if (self.template is None) == (self.template_id is None):
            raise ValueError("give the template, or the template_id of a stored one")
        if self.template is None:
            return self  # checked again once the stored template is copied
        if self.channel != "email" and not self.template.text:
            raise ValueError("a paper or fax mailing prints the template's text part: give one")
        if self.channel == "post" and self.post is None:
            raise ValueError("a paper mailing needs post: its envelopes and sender")
        if self.channel != "post" and self.post is not None:
            raise ValueError("post is for paper mailings only")
        return self


class MailingPatch(BaseModel):
    """Changed fields of a mailing not yet started."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    template: TemplateParts | None = None
    attachments: list[AttachmentRef] | None = Field(default=None, max_length=20)
    reply_to: EmailAddress | None = None
    audience: Audience | None = None
    scheduled_at: AwareDatetime | None = None
    recurrence: Recurrence | None = None
    post: PostOptions | None = None


class Letterhead(BaseModel):
    """The company letterhead a paper mailing's letters are printed under."""

    content_type: str
    width: int
    height: int
    size: int


class PrintRun(BaseModel):
    """A paper mailing as printed: its two PDFs and what printing them takes (the
    effectiveness report counts these consumables)."""

    letters: int
    pages: int
    sheets: int
    envelope: EnvelopeFormat
    envelopes: int
    toner_cartridges: Decimal
    printed_at: datetime


class Mailing(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    title: str
    channel: Channel
    post: PostOptions | None = None
    letterhead: Letterhead | None = None
    printed: PrintRun | None = None
    status: MailingStatus
    directions: list[str]
    campaign_id: uuid.UUID | None = None
    subject: str
    html: str | None = None
    text: str | None = None
    attachments: list[AttachmentRef] = []
    reply_to: str | None = None
    audience: StoredAudience
    scheduled_at: datetime | None = None
    prepared_at: datetime | None = None
    finished_at: datetime | None = None
    audience_resolved_at: datetime | None = Field(
        default=None, description="when a dynamic list was resolved for the sender, and kept"
    )
    template_id: uuid.UUID | None = Field(
        default=None, description="the stored template the mailing was made from"
    )
    template_version: int | None = None
    recurrence: Recurrence | None = None
    series_id: uuid.UUID | None = None
    issue: int = 1
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    totals: dict[str, int] = Field(
        default_factory=dict, description="recipients per status and per exclusion reason"
    )

    @property
    def parts(self) -> TemplateParts:
        return TemplateParts(subject=self.subject, html=self.html, text=self.text)


class Recipient(BaseModel):
    """One resolved recipient as kept: its state, or the reason it was excluded."""

    model_config = ConfigDict(extra="ignore")

    person_id: uuid.UUID
    organization_id: uuid.UUID | None = None
    email: str | None = None
    status: RecipientStatus
    reason: str | None = None
    detail: str | None = None
    queued_at: datetime | None = None
    result_at: datetime | None = None


class Validation(BaseModel):
    """What a send would do now: who gets it, who not and why (missing fields named)."""

    recipients: int
    excluded: dict[str, int]
    exclusions: list[Recipient] = Field(
        description="up to 1,000 the caller may see, in person id order"
    )
    unsubscribe_link: bool


class Preview(BaseModel):
    person_id: uuid.UUID
    organization_id: uuid.UUID | None = None
    email: str | None = None
    subject: str | None = None
    html: str | None = None
    text: str | None = None
    excluded: str | None = None
    detail: str | None = None


def status_allowed(old: str, new: str) -> bool:
    return new in TRANSITIONS[old]


def holds_position(position: str | None, wanted: Iterable[str]) -> bool:
    """Whether a position matches any wanted one (case-insensitive, a part of it: "бухгалтер"
    matches "Главный бухгалтер"); no wanted positions: everybody."""
    wanted = [w.casefold() for w in wanted]
    if not wanted:
        return True
    return position is not None and any(w in position.casefold() for w in wanted)


@dataclass(frozen=True)
class Candidate:
    """A person the audience names, at an organization (None when named directly)."""

    person_id: uuid.UUID
    organization_id: uuid.UUID | None


def candidates_at(
    contacts: Iterable[Contact], organization_ids: set[uuid.UUID], positions: list[str]
) -> list[Candidate]:
    """The persons employed at these organizations in the wanted positions, each once (at
    the first such organization in id order)."""
    found: dict[uuid.UUID, Candidate] = {}
    for contact in contacts:
        for employment in sorted(contact.employments, key=lambda e: e.organization_id):
            if employment.organization_id in organization_ids and holds_position(
                employment.position, positions
            ):
                found.setdefault(
                    contact.person_id, Candidate(contact.person_id, employment.organization_id)
                )
    return list(found.values())


@dataclass(frozen=True)
class Resolved:
    """One candidate's row as a send keeps it."""

    person_id: uuid.UUID
    organization_id: uuid.UUID | None
    email: str | None
    status: RecipientStatus
    reason: Exclusion | None = None
    detail: str | None = None

    def row(self, mailing_id: uuid.UUID) -> dict[str, Any]:
        return {
            "mailing_id": mailing_id,
            "person_id": self.person_id,
            "organization_id": self.organization_id,
            "email": self.email,
            "status": self.status,
            "reason": self.reason,
            "detail": self.detail,
        }


def classify(
    candidate: Candidate,
    *,
    person: PersonRecord | None,
    organization: OrganizationRecord | None,
    contact: Contact | None,
    consent: ConsentEntry | None,
    template: MessageTemplate | None,
    context: Mapping[str, Any] | None,
    channel: Channel = "email",
    postal: PostalAddress | None = None,
    fax: str | None = None,
) -> Resolved:
    """Whether a candidate gets the mailing, or the first reason it does not, in this order:
    unknown person, blocked person, blocked organization, unsubscribed, no consent, no address
    (for the channel: an e-mail address, the organization's postal address with its
    postcode, or its fax number), missing template fields (all of them named; not checked
    again without ``template``)."""
    email = contact.email_at(candidate.organization_id) if contact else None

    def excluded(reason: Exclusion, detail: str | None = None) -> Resolved:
        return Resolved(
            candidate.person_id, candidate.organization_id, email, "excluded", reason, detail
        )

    if person is None or person.deleted:
        return excluded("unknown_person")
    if person.blocked:
        return excluded("blocked_person")
    if organization is not None and (organization.blocked or organization.deleted):
        return excluded("blocked_organization")
    if consent is None or not consent.granted:
        unsubscribed = consent is not None and consent.source == "unsubscribe"
        return excluded("unsubscribed" if unsubscribed else "no_consent")
    if channel == "email" and email is None:
        return excluded("no_address")
    if channel == "post" and postal is None:
        return excluded("no_address", "no postal address with a postcode")
    if channel == "fax" and fax is None:
        return excluded("no_address", "no fax number")
    missing = [] if template is None else template.missing(context or {})
    if missing:
        return excluded("missing_field", ", ".join(missing))
    return Resolved(candidate.person_id, candidate.organization_id, email, "pending")


# --- the signed unsubscribe token ------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, body: bytes, purpose: TokenPurpose) -> bytes:
    return hmac.new(key, purpose.encode() + b":" + body, hashlib.sha256).digest()[:16]


def unsubscribe_token(
    key: bytes,
    mailing_id: uuid.UUID,
    person_id: uuid.UUID,
    purpose: TokenPurpose = "unsubscribe",
) -> str:
    """A token naming a mailing and a person, signed for one purpose (HMAC-SHA-256, 128 bits
    kept): an unsubscribe link's does not fetch a fax, a fax document's records no result."""
    body = mailing_id.bytes + person_id.bytes
    return f"{_b64(body)}.{_b64(_mac(key, body, purpose))}"


def read_unsubscribe_token(
    key: bytes, token: str, purpose: TokenPurpose = "unsubscribe"
) -> tuple[uuid.UUID, uuid.UUID] | None:
    """The mailing and person a token names, or None when it is not one this key signed for
    this purpose."""
    if len(token) > 100 or token.count(".") != 1:
        return None
    body_text, mac_text = token.split(".")
    try:
        body, mac = _unb64(body_text), _unb64(mac_text)
    except (ValueError, UnicodeEncodeError):
        return None
    if len(body) != 32 or not hmac.compare_digest(mac, _mac(key, body, purpose)):
        return None
    return uuid.UUID(bytes=body[:16]), uuid.UUID(bytes=body[16:])


def idempotency_key(mailing_id: uuid.UUID, person_id: uuid.UUID) -> str:
    """The notifier's key of one recipient's message: the same however often it is handed over."""
    return f"mailing:{mailing_id}:{person_id}"


def parse_idempotency_key(key: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    parts = key.split(":")
    if len(parts) != 3 or parts[0] != "mailing":
        return None
    try:
        return uuid.UUID(parts[1]), uuid.UUID(parts[2])
    except ValueError:
        return None


class FaxResult(BaseModel):
    """What the fax gateway reports on one recipient's fax."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["sent", "failed", "busy", "no_answer"]
    pages: int | None = Field(default=None, ge=0, le=10_000)
    detail: str | None = Field(default=None, max_length=2000)
