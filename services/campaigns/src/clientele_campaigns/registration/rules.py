"""The public registration form, tickets and check-in (no I/O)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime
from typing import Annotated, Literal

from clientele_shared.values import Name, Title
from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

RegistrationStatus = Literal["registered", "review"]
"""``registered``: matched to a known organization (by INN, or as the one organization of the
known person matched by e-mail or phone) and added as a participant; ``review``: kept for a
person to match (unknown organization, or a blocked one, never added)."""

Inn = Annotated[str, StringConstraints(pattern=r"^(\d{10}|\d{12})$")]


class RegistrationForm(BaseModel):
    """What a registrant fills in; ``website`` is a honeypot that people leave empty."""

    model_config = ConfigDict(extra="forbid")

    last_name: Name
    first_name: Name
    email: Annotated[EmailStr, Field(max_length=320)]
    organization_name: Title
    inn: Inn | None = None
    phone: str | None = Field(
        default=None, max_length=40, pattern=r"^[0-9+() .-]+$", description="e.g. +7 495 123-45-67"
    )
    website: str = Field(default="", max_length=500, description="leave empty")


class Ticket(BaseModel):
    """The answer to a registrant: the ticket code is shown once (kept only as its hash) and
    sent once by e-mail; a repeated registration of the same address gets no code."""

    registration_id: uuid.UUID
    status: RegistrationStatus
    code: str | None


class Registration(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    campaign_id: uuid.UUID
    last_name: str
    first_name: str
    email: str
    organization_name: str
    inn: str | None = None
    status: RegistrationStatus
    organization_id: uuid.UUID | None = None
    person_id: uuid.UUID | None = Field(
        default=None, description="the known person matched by e-mail or phone"
    )
    phone: str | None = None
    participant_id: uuid.UUID | None = None
    registered_at: datetime
    checked_in_at: datetime | None = None
    checked_in_by: str | None = None


class CheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


def new_code() -> str:
    """A ticket code: 96 random bits, URL-safe (fits a QR code)."""
    return secrets.token_urlsafe(12)


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def client_key(campaign_id: uuid.UUID, host: str) -> str:
    """The rate-limit key of a registrant's address for one event (never the address itself)."""
    digest = hashlib.sha256(host.encode()).hexdigest()
    return f"clientele:campaigns:registration:{campaign_id}:{digest}"
