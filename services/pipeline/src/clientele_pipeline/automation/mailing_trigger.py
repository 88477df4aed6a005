"""The `mailing_result` trigger: campaigns' result of a mailing to a person (sent, bounced,
failed, complained) fires the rules of the open deals of the person's organization and of the
deals the person is a contact of (no I/O here; ``mailing_results`` consumes the events)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

KIND = "mailing_result"


class MailingResult(BaseModel):
    """A mailing's message to the deal's client or contact got a result
    (`campaigns.mailing.result_recorded`), optionally only this result, channel, mailing or
    marketing event."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["mailing_result"]
    result: Literal["sent", "bounced", "failed", "complained"] | None = Field(
        default=None, description="any result when absent"
    )
    channel: Literal["email", "fax"] | None = None
    mailing_id: uuid.UUID | None = None
    campaign_id: uuid.UUID | None = Field(
        default=None, description="only mailings of this marketing event"
    )

    def matches(self, facts: dict[str, Any]) -> bool:
        """Whether an occurrence's facts pass the trigger's filters."""
        wanted = {
            "result": self.result,
            "channel": self.channel,
            "mailing_id": None if self.mailing_id is None else str(self.mailing_id),
            "campaign_id": None if self.campaign_id is None else str(self.campaign_id),
        }
        return all(value is None or facts.get(name) == value for name, value in wanted.items())


FACTS = (
    "mailing_id",
    "campaign_id",
    "person_id",
    "organization_id",
    "channel",
    "result",
    "reason",
    "recorded_at",
)


def mailing_facts(payload: dict[str, Any], event_id: uuid.UUID) -> dict[str, Any]:
    """What the trigger's conditions see of a result (`event.result`, `event.mailing_id`...);
    ``source_event_id`` is campaigns' event (each deal's firing has its own event id)."""
    return {**{name: payload.get(name) for name in FACTS}, "source_event_id": str(event_id)}


def deal_event_id(event_id: uuid.UUID, deal_id: uuid.UUID) -> uuid.UUID:
    """The event id one deal's occurrence of a result goes by: firings are once per rule,
    version and event, and one result fires the rules of several deals."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"clientele:mailing-result:{event_id}:{deal_id}")
