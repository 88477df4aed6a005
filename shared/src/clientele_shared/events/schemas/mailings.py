"""Events the campaigns service publishes about persons' consent and their addresses, on
``clientele.campaigns.consents`` keyed by the person id (ADR 38).

Every change of a person's consent for a channel (a form, an import, a call, an unsubscribe link)
is one ``consent.changed``, so the directory and the other services see the same ledger. A hard
bounce of a mailing (the receiving server refused the address permanently) is an
``address.bounced``: the directory marks the address for review.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import AwareDatetime, Field

from clientele_shared.events.registry import EventSpec
from clientele_shared.events.schemas.base import Payload
from clientele_shared.events.topics import CAMPAIGN_CONSENTS

ConsentChannel = Literal["email", "post", "fax"]
ConsentSource = Literal["form", "import", "call", "unsubscribe"]


class ConsentChanged(Payload):
    """A person gave or withdrew consent to be written to on a channel (``granted``)."""

    consent_id: int = Field(ge=1)
    """The ledger entry: increasing per service, so a consumer keeps the newest."""
    person_id: uuid.UUID
    channel: ConsentChannel
    granted: bool
    source: ConsentSource
    recorded_at: AwareDatetime
    mailing_id: uuid.UUID | None = None
    """The mailing whose unsubscribe link was used (``source`` ``unsubscribe``)."""
    note: str | None = Field(default=None, max_length=2000)


class AddressBounced(Payload):
    """A mailing's message to a person's address was refused permanently (a hard bounce)."""

    person_id: uuid.UUID
    email: str = Field(max_length=320)
    mailing_id: uuid.UUID
    reason: str | None = Field(default=None, max_length=2000)
    bounced_at: AwareDatetime


CONSENT_CHANGED = "campaigns.consent.changed"
ADDRESS_BOUNCED = "campaigns.address.bounced"

EVENTS = [
    EventSpec(CONSENT_CHANGED, 1, CAMPAIGN_CONSENTS, ConsentChanged),
    EventSpec(ADDRESS_BOUNCED, 1, CAMPAIGN_CONSENTS, AddressBounced),
]
