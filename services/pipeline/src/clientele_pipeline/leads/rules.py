"""What a valid lead is, when a request repeats an open one, whose turn it is (no I/O)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from clientele_shared.contacts import normalize_email, normalize_phone
from clientele_shared.events.schemas.leads import LeadSource, LeadStatus, RejectReason
from clientele_shared.values import Amount, Currency, Direction, Name, Note, Title, clean_text
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError
from stdnum.ru import inn as ru_inn

OPEN_STATUSES: tuple[LeadStatus, ...] = ("new", "assigned")
SALES_ROLES = ("sales", "head_of_sales")
"""Roles of the employees a lead may be handed to."""
MAX_MESSAGE = 10_000
MAX_DETAILS = 30


def _email(value: str) -> str:
    try:
        return normalize_email(value)
    except ValueError as exc:
        raise PydanticCustomError("email", "{reason}", {"reason": str(exc)}) from None


def _phone(value: str) -> str:
    try:
        number, _extension = normalize_phone(value.strip())
    except ValueError as exc:
        raise PydanticCustomError("phone", "{reason}", {"reason": str(exc)}) from None
    return number


def _inn(value: str) -> str:
    """A company's (10 digits) or an entrepreneur's (12) INN with valid check digits."""
    compact = str(ru_inn.compact(value))
    if not (compact.isascii() and compact.isdigit() and len(compact) in (10, 12)):
        raise PydanticCustomError("inn", "an INN has 10 or 12 digits")
    if not ru_inn.is_valid(compact):
        raise PydanticCustomError("inn", "the INN's check digits are wrong")
    return compact


def _message(value: str) -> str:
    return clean_text(value)


Email = Annotated[str, StringConstraints(max_length=320), AfterValidator(_email)]
PhoneNumber = Annotated[str, StringConstraints(max_length=64), AfterValidator(_phone)]
Inn = Annotated[str, StringConstraints(max_length=20), AfterValidator(_inn)]
Message = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_MESSAGE),
    AfterValidator(_message),
]
DetailKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")]
DetailValue = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=500), AfterValidator(clean_text)
]
ExternalId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(clean_text),
]


class LeadIntake(BaseModel):
    """An inbound request as a form, a mailbox, a messenger or a person hands it in."""

    model_config = ConfigDict(extra="forbid")

    source: LeadSource
    direction: Direction | None = Field(
        default=None, description="the caller's only direction when left out"
    )
    external_id: ExternalId | None = Field(
        default=None, description="the source system's id: the same one again answers the lead"
    )
    contact_name: Name | None = None
    email: Email | None = None
    phone: PhoneNumber | None = None
    company_name: Title | None = None
    inn: Inn | None = None
    message: Message | None = None
    details: dict[DetailKey, DetailValue] = Field(
        default_factory=dict,
        max_length=MAX_DETAILS,
        description="flat key/values of the source (utm_source, form, page...)",
    )


class Lead(BaseModel):
    """A lead as the API shows it."""

    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    direction: str
    source: LeadSource
    external_id: str | None = None
    status: LeadStatus
    contact_name: str | None = None
    email: str | None = None
    phone: str | None = None
    company_name: str | None = None
    inn: str | None = None
    message: str | None = None
    details: dict[str, str] = Field(default_factory=dict)
    suggested_organization_id: uuid.UUID | None = None
    assignee_employee_id: uuid.UUID | None = None
    assigned_at: datetime | None = None
    repeats: int = 0
    last_message: str | None = None
    last_received_at: datetime
    deal_id: uuid.UUID | None = None
    reject_reason: RejectReason | None = None
    reject_comment: str | None = None
    version: int
    created_at: datetime
    updated_at: datetime

    @property
    def directions(self) -> list[str]:
        return [self.direction]

    @property
    def open(self) -> bool:
        return self.status in OPEN_STATUSES


def lead_of_row(row: Any) -> Lead:
    """A lead of its table's row (one direction, kept as an array like every direction)."""
    values = dict(row)
    values["direction"] = values["directions"][0]
    return Lead.model_validate(values)


class Assignment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    employee_id: uuid.UUID


class Conversion(BaseModel):
    """The deal a lead becomes: its client (an organization of the directory) and what the
    deal starts with (its title: the lead's company or contact when left out)."""

    model_config = ConfigDict(extra="forbid")

    organization_id: uuid.UUID
    pipeline_id: uuid.UUID | None = Field(
        default=None, description="the direction's oldest pipeline when left out"
    )
    stage_id: uuid.UUID | None = None
    title: Title | None = None
    amount: Amount | None = None
    currency: Currency | None = None


class Rejection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: RejectReason
    comment: Note | None = None


TITLE_MAX = 500
"""A deal title's limit (``clientele_shared.values.Title``): a long company name is cut."""


def deal_title(lead: Lead, conversion: Conversion) -> str:
    """The new deal's title: the one given, else the lead's company, contact or source."""
    if conversion.title:
        return conversion.title
    name = lead.company_name or lead.contact_name or lead.email or lead.phone
    title = f"Заявка: {name}" if name else f"Заявка ({lead.source})"
    return title[:TITLE_MAX]


def deal_source(lead: Lead) -> dict[str, Any]:
    """The deal's source (its known fields) from the lead's channel and details."""
    source: dict[str, Any] = {"channel": lead.source}
    for name in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "form"):
        value = lead.details.get(name)
        if value:
            source[name] = value[:100]
    return source


def turn_of(staff: list[uuid.UUID], turns: int) -> uuid.UUID:
    """The employee whose turn it is (``turns`` handed out before, staff in a stable order)."""
    return staff[turns % len(staff)]
