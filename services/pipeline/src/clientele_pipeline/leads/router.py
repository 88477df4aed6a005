"""HTTP of leads: parse, call the service, answer with the ETag."""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal, Writer, require_roles
from clientele_shared.auth.principal import WRITER_ROLES, Principal
from clientele_shared.events.schemas.leads import LeadSource, LeadStatus
from clientele_shared.http.concurrency import IfMatch, etag, required_versions
from clientele_shared.runtime import CurrentRuntime
from clientele_shared.service_layer import AuditEntry
from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import AwareDatetime

from clientele_pipeline.leads import service
from clientele_pipeline.leads.rules import Assignment, Conversion, Lead, LeadIntake, Rejection

router = APIRouter(prefix="/v1/leads", tags=["leads"])
Limit = Annotated[int, Query(ge=1, le=500)]

Intake = Annotated[Principal, Depends(require_roles(*WRITER_ROLES, admit_confined=True))]
"""Who may hand a lead in: the writers (in their directions), and a form, mail or messenger
connector's service token confined to its directions (ADR 49, 69), which may do nothing else."""


def _tagged(response: Response, lead: Lead) -> Lead:
    response.headers["ETag"] = etag(lead.version)
    return lead


@router.post("", status_code=status.HTTP_201_CREATED)
async def receive_lead(
    intake: LeadIntake, principal: Intake, runtime: CurrentRuntime, response: Response
) -> Lead:
    """A new lead (201, assigned at once by turns when its direction has sales staff); the
    lead already taken under the same source and external id, or the open lead a request from
    the same e-mail or phone repeats within the window (200)."""
    lead, created = await service.receive(runtime=runtime, principal=principal, intake=intake)
    response.headers["Location"] = f"/v1/leads/{lead.id}"
    if not created:
        response.status_code = status.HTTP_200_OK
    return _tagged(response, lead)


@router.get("")
async def list_leads(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    lead_status: Annotated[LeadStatus | None, Query(alias="status")] = None,
    assignee_employee_id: uuid.UUID | None = None,
    unassigned: Annotated[bool, Query(description="only the leads nobody was given")] = False,
    direction: str | None = None,
    source: LeadSource | None = None,
    before: Annotated[
        AwareDatetime | None, Query(description="the page after: the last lead's created_at")
    ] = None,
    before_id: Annotated[
        uuid.UUID | None, Query(description="and the last lead's id (leads of one instant)")
    ] = None,
    limit: Limit = 100,
) -> list[Lead]:
    """Leads of the caller's directions, newest first."""
    return await service.list_leads(
        runtime=runtime,
        principal=principal,
        status=lead_status,
        assignee_employee_id=assignee_employee_id,
        unassigned=unassigned,
        direction=direction,
        source=source,
        before=before,
        before_id=before_id,
        limit=limit,
    )


@router.get("/{lead_id}")
async def get_lead(
    lead_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime, response: Response
) -> Lead:
    lead = await service.get_lead(runtime=runtime, principal=principal, lead_id=lead_id)
    return _tagged(response, lead)


@router.post("/{lead_id}/assign")
async def assign_lead(
    lead_id: uuid.UUID,
    assignment: Assignment,
    principal: Writer,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Lead:
    """Hand an open lead to an active employee of its direction (If-Match)."""
    lead = await service.assign_lead(
        runtime=runtime,
        principal=principal,
        lead_id=lead_id,
        assignment=assignment,
        expected=required_versions(if_match),
    )
    return _tagged(response, lead)


@router.post("/{lead_id}/convert")
async def convert_lead(
    lead_id: uuid.UUID,
    conversion: Conversion,
    principal: Writer,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Lead:
    """Make an open lead a deal with a client the caller sees, live and not blocked (422,
    409 counterparty-blocked), in the same transaction (If-Match)."""
    lead = await service.convert_lead(
        runtime=runtime,
        principal=principal,
        lead_id=lead_id,
        conversion=conversion,
        expected=required_versions(if_match),
    )
    return _tagged(response, lead)


@router.post("/{lead_id}/reject")
async def reject_lead(
    lead_id: uuid.UUID,
    rejection: Rejection,
    principal: Writer,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Lead:
    """Turn an open lead down with a reason (If-Match)."""
    lead = await service.reject_lead(
        runtime=runtime,
        principal=principal,
        lead_id=lead_id,
        rejection=rejection,
        expected=required_versions(if_match),
    )
    return _tagged(response, lead)


@router.get("/{lead_id}/audit")
async def lead_audit(
    lead_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    after: Annotated[int, Query(ge=0, description="entries after this entry id")] = 0,
    limit: Limit = 100,
) -> list[AuditEntry]:
    """Every change of the lead (its repeats too): who, when, what, old and new."""
    return await service.lead_audit(
        runtime=runtime, principal=principal, lead_id=lead_id, after=after, limit=limit
    )
