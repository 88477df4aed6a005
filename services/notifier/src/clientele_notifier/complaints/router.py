"""HTTP of feedback-loop reports: a mailbox provider's complaint about one of our e-mails,
posted by the service that reads the feedback-loop mailbox (admins and services)."""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.dependencies import require_roles
from clientele_shared.auth.principal import Principal, Role
from clientele_shared.http.problems import ProblemError
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel

from clientele_notifier.complaints import service

router = APIRouter(prefix="/v1/complaints", tags=["deliveries"])
Operator = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.SERVICE))]
MAX_REPORT = 1_048_576


class Complaint(BaseModel):
    delivery_id: uuid.UUID
    recorded: bool
    """False: the delivery's complaint was recorded already."""


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "the report's bytes (sent as multipart/report or any other type)",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def report_complaint(
    request: Request, principal: Operator, runtime: CurrentRuntime
) -> Complaint:
    """A feedback report (RFC 5965, the whole multipart/report message as the body): the
    e-mail it names is published as complained, once."""
    data = await request.body()
    if len(data) > MAX_REPORT:
        raise ProblemError(413, "Too large", "A feedback report has at most 1 MiB.")
    delivery_id, recorded = await service.report(runtime=runtime, principal=principal, data=data)
    return Complaint(delivery_id=delivery_id, recorded=recorded)
