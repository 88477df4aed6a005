"""What the person's card shows of campaigns' facts about the person (read-only): the consent
per mailing channel with its source and time, and the addresses a mailing bounced on."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel


class ChannelConsent(BaseModel):
    """The person's latest consent on a mailing channel in campaigns' ledger."""

    granted: bool
    source: Literal["form", "import", "call", "unsubscribe"]
    recorded_at: datetime
    mailing_id: uuid.UUID | None = None


class AddressReview(BaseModel):
    """An address of the person a mailing hard-bounced on: to check or replace."""

    email: str
    mailing_id: uuid.UUID
    reason: str | None = None
    bounced_at: datetime


class MailingFacts(BaseModel):
    mailing_consent: dict[Literal["email", "post", "fax"], ChannelConsent]
    addresses_for_review: list[AddressReview]
