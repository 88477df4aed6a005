"""Events the campaigns service publishes about persons' consent and their addresses, on
``clientele.campaigns.consents`` keyed by the person id (ADR 38).

Every change of a person's consent for a channel (a form, an import, a call, an unsubscribe link)
is one ``consent.changed``, so the directory and the other services see the same ledger. A hard
bounce of a mailing (the receiving server refused the address permanently) is an
``address.bounced``: the directory marks the address for review.

Each recipient's delivery result (sent, bounced, failed, complained) is one
``mailing.result_recorded`` on ``clientele.campaigns.mailing-results``, keyed by the person id:
the automation engine fires the rules of the recipient's organization's open deals on it.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import AwareDatetime, Field

from clientele_shared.events.registry import EventSpec
from clientele_shared.events.schemas.base import Payload
from clientele_shared.events.topics import CAMPAIGN_CONSENTS, MAILING_RESULTS

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


MailingChannel = Literal["email", "fax"]
MailingResult = Literal["sent", "bounced", "failed", "complained"]


class MailingResultRecorded(Payload):
    """A mailing's message to one recipient got its result: ``sent`` (the receiving server
    or the fax gateway took it), ``bounced`` (refused permanently), ``failed`` (the notifier
    or the gateway gave up) or ``complained`` (reported as spam after it was sent)."""

    mailing_id: uuid.UUID
    campaign_id: uuid.UUID | None = None
    """The marketing event the mailing belongs to, if any."""
    person_id: uuid.UUID
    organization_id: uuid.UUID | None = None
    """The organization the person was chosen for (the audience's), if any."""
    channel: MailingChannel
    result: MailingResult
    reason: str | None = Field(default=None, max_length=2000)
    recorded_at: AwareDatetime


CONSENT_CHANGED = "campaigns.consent.changed"
ADDRESS_BOUNCED = "campaigns.address.bounced"
MAILING_RESULT_RECORDED = "campaigns.mailing.result_recorded"

EVENTS = [
    EventSpec(CONSENT_CHANGED, 1, CAMPAIGN_CONSENTS, ConsentChanged),
    EventSpec(ADDRESS_BOUNCED, 1, CAMPAIGN_CONSENTS, AddressBounced),
    EventSpec(MAILING_RESULT_RECORDED, 1, MAILING_RESULTS, MailingResultRecorded),
]
