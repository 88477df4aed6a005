"""Events the campaigns service publishes on ``clientele.campaigns.campaigns``.

Every event of one marketing event (a campaign) and its participants is keyed by the campaign
id, so they arrive in order. Times are timezone-aware (UTC on the wire). ``changed`` carries
only the changed fields, each with its old and new value, in the campaigns API's JSON shape.
Participants' attendance and outcomes are published so the client summary in interactions and
the automation engine can react (a follow-up task after attending).

Kinds of events are data (an administrator's catalogue), so ``created`` and ``restored`` v2
carry the kind as a code with its names; v1, whose kind was a fixed list, stays readable for
the events already published (ADR 52).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from clientele_shared.events.registry import EventSpec
from clientele_shared.events.schemas.base import FieldChange, Payload
from clientele_shared.events.topics import CAMPAIGN_EVENTS

CampaignKind = Literal[
    "seminar", "conference", "exhibition", "webinar", "mailing_campaign", "other"
]
EVENT_KIND_CODE = r"^[a-z0-9][a-z0-9_-]{0,29}$"
EventKindCode = Annotated[str, StringConstraints(pattern=EVENT_KIND_CODE)]
"""The code of a kind in the campaigns service's catalogue of event kinds."""
CampaignStatus = Literal["planned", "preparing", "running", "done", "cancelled"]
ParticipantStatus = Literal[
    "invited", "confirmed", "registered", "attended", "no_show", "cancelled"
]


class CampaignSnapshot(Payload):
    """A marketing event as it is after the change the event reports."""

    campaign_id: uuid.UUID
    version: int = Field(ge=1)
    kind: CampaignKind
    title: str
    status: CampaignStatus
    planned_start: AwareDatetime
    planned_end: AwareDatetime
    actual_start: AwareDatetime | None = None
    actual_end: AwareDatetime | None = None
    place: str | None = None
    responsible_employee_id: uuid.UUID | None = None
    directions: list[str] = Field(default_factory=list)
    goals: list[str] = Field(default_factory=list)
    registration_open: bool = False


class CampaignCreated(CampaignSnapshot):
    """A new marketing event (the whole record)."""


class CampaignRestored(CampaignSnapshot):
    """A soft-deleted marketing event was restored (the whole record)."""


class CampaignSnapshotV2(Payload):
    """A marketing event as it is after the change the event reports; its kind is a code of
    the kinds catalogue (any code, not a fixed list), with the kind's names at that moment."""

    campaign_id: uuid.UUID
    version: int = Field(ge=1)
    kind: EventKindCode
    kind_name_ru: str
    kind_name_en: str
    title: str
    status: CampaignStatus
    planned_start: AwareDatetime
    planned_end: AwareDatetime
    actual_start: AwareDatetime | None = None
    actual_end: AwareDatetime | None = None
    place: str | None = None
    responsible_employee_id: uuid.UUID | None = None
    directions: list[str] = Field(default_factory=list)
    goals: list[str] = Field(default_factory=list)
    registration_open: bool = False


class CampaignCreatedV2(CampaignSnapshotV2):
    """A new marketing event (the whole record, its kind a catalogue code)."""


class CampaignRestoredV2(CampaignSnapshotV2):
    """A soft-deleted marketing event was restored (the whole record, its kind a code)."""


class CampaignChanged(Payload):
    """Changed fields of a marketing event, each with its old and new value."""

    campaign_id: uuid.UUID
    version: int = Field(ge=1)
    changes: dict[str, FieldChange]


class CampaignDeleted(Payload):
    """A marketing event was soft-deleted (it can be restored)."""

    campaign_id: uuid.UUID
    version: int = Field(ge=1)


class AddedParticipant(Payload):
    participant_id: uuid.UUID
    organization_id: uuid.UUID
    person_id: uuid.UUID | None = None


MAX_ADDED = 1000
"""The most participants one ``participants.added`` event names (a large addition is several)."""


class ParticipantsAdded(Payload):
    """Organizations (and maybe one of their persons each) joined a marketing event at a stage,
    with a status; one addition of many comes as several events of at most 1,000."""

    campaign_id: uuid.UUID
    stage_id: uuid.UUID
    status: ParticipantStatus
    participants: list[AddedParticipant] = Field(min_length=1, max_length=MAX_ADDED)


class ParticipantStatusChanged(Payload):
    """A participant's status changed (attendance: ``attended`` or ``no_show``)."""

    campaign_id: uuid.UUID
    participant_id: uuid.UUID
    version: int = Field(ge=1)
    organization_id: uuid.UUID
    person_id: uuid.UUID | None = None
    old_status: ParticipantStatus
    status: ParticipantStatus
    changed_at: AwareDatetime


class ParticipantOutcomeRecorded(Payload):
    """A participant's outcome: loyalty and interest in partnership (1-5), notes, follow-up."""

    campaign_id: uuid.UUID
    participant_id: uuid.UUID
    version: int = Field(ge=1)
    organization_id: uuid.UUID
    person_id: uuid.UUID | None = None
    loyalty: int | None = Field(default=None, ge=1, le=5)
    partnership_interest: int | None = Field(default=None, ge=1, le=5)
    notes: str | None = None
    follow_up: bool = False


CAMPAIGN_CREATED = "campaigns.campaign.created"
CAMPAIGN_CHANGED = "campaigns.campaign.changed"
CAMPAIGN_DELETED = "campaigns.campaign.deleted"
CAMPAIGN_RESTORED = "campaigns.campaign.restored"
PARTICIPANTS_ADDED = "campaigns.participants.added"
PARTICIPANT_STATUS_CHANGED = "campaigns.participant.status_changed"
PARTICIPANT_OUTCOME_RECORDED = "campaigns.participant.outcome_recorded"

EVENTS = [
    EventSpec(CAMPAIGN_CREATED, 1, CAMPAIGN_EVENTS, CampaignCreated),
    EventSpec(CAMPAIGN_CREATED, 2, CAMPAIGN_EVENTS, CampaignCreatedV2),
    EventSpec(CAMPAIGN_CHANGED, 1, CAMPAIGN_EVENTS, CampaignChanged),
    EventSpec(CAMPAIGN_DELETED, 1, CAMPAIGN_EVENTS, CampaignDeleted),
    EventSpec(CAMPAIGN_RESTORED, 1, CAMPAIGN_EVENTS, CampaignRestored),
    EventSpec(CAMPAIGN_RESTORED, 2, CAMPAIGN_EVENTS, CampaignRestoredV2),
    EventSpec(PARTICIPANTS_ADDED, 1, CAMPAIGN_EVENTS, ParticipantsAdded),
    EventSpec(PARTICIPANT_STATUS_CHANGED, 1, CAMPAIGN_EVENTS, ParticipantStatusChanged),
    EventSpec(PARTICIPANT_OUTCOME_RECORDED, 1, CAMPAIGN_EVENTS, ParticipantOutcomeRecorded),
]
