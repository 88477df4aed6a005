"""Events the pipeline service publishes on ``clientele.pipeline.leads``.

Every event of one lead is keyed by the lead id, so a lead's events arrive in order. A lead is
an inbound request (a web form, an e-mail, a messenger, a call): ``received`` carries it whole,
``assigned`` names the manager it went to, ``converted`` the deal it became, ``rejected`` why it
was turned down. Times are timezone-aware (UTC on the wire).
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import AwareDatetime, Field

from clientele_shared.events.registry import EventSpec
from clientele_shared.events.schemas.base import Payload
from clientele_shared.events.topics import LEADS

LeadSource = Literal["web_form", "email", "messenger", "phone", "manual", "other"]
LeadStatus = Literal["new", "assigned", "converted", "rejected"]
RejectReason = Literal["spam", "duplicate", "not_a_client", "no_response", "other"]


class LeadReceived(Payload):
    """A new lead (the whole request as it was taken in), or a repeat of an open one
    (``repeats`` counts them; the lead's id is the first request's)."""

    lead_id: uuid.UUID
    version: int = Field(ge=1)
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
    repeats: int = Field(default=0, ge=0)
    received_at: AwareDatetime


class LeadAssigned(Payload):
    """A lead went to a manager: at once by turns within its direction, or by hand."""

    lead_id: uuid.UUID
    version: int = Field(ge=1)
    direction: str
    from_employee_id: uuid.UUID | None = None
    to_employee_id: uuid.UUID
    automatic: bool


class LeadConverted(Payload):
    """A lead became a deal with a client of the directory."""

    lead_id: uuid.UUID
    version: int = Field(ge=1)
    direction: str
    deal_id: uuid.UUID
    organization_id: uuid.UUID


class LeadRejected(Payload):
    """A lead was turned down, with why."""

    lead_id: uuid.UUID
    version: int = Field(ge=1)
    direction: str
    reason: RejectReason
    comment: str | None = None


LEAD_RECEIVED = "pipeline.lead.received"
LEAD_ASSIGNED = "pipeline.lead.assigned"
LEAD_CONVERTED = "pipeline.lead.converted"
LEAD_REJECTED = "pipeline.lead.rejected"

EVENTS = [
    EventSpec(LEAD_RECEIVED, 1, LEADS, LeadReceived),
    EventSpec(LEAD_ASSIGNED, 1, LEADS, LeadAssigned),
    EventSpec(LEAD_CONVERTED, 1, LEADS, LeadConverted),
    EventSpec(LEAD_REJECTED, 1, LEADS, LeadRejected),
]
