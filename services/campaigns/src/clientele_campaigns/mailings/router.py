"""HTTP of mailings: create, change, validate, preview, send, pause, resume, cancel; the
recipients and the totals; a paper mailing's letterhead and printed PDFs."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.http.concurrency import IfMatch, etag, required_versions
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, File, Query, Request, Response, UploadFile, status
from fastapi.responses import StreamingResponse

from clientele_campaigns.documents.router import storage_of
from clientele_campaigns.mailings import service
from clientele_campaigns.mailings.rules import (
    Mailing,
    MailingDraft,
    MailingPatch,
    MailingStatus,
    Preview,
    Recipient,
    RecipientStatus,
    Validation,
)

router = APIRouter(prefix="/v1/mailings", tags=["mailings"])


def _tagged(response: Response, mailing: Mailing) -> Mailing:
    response.headers["ETag"] = etag(mailing.version)
    return mailing


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_mailing(
    draft: MailingDraft, principal: CurrentPrincipal, runtime: CurrentRuntime, response: Response
) -> Mailing:
    """A draft e-mail mailing; its template is compiled (every problem is a 422 naming part
    and line) and its audience's references checked."""
    mailing = await service.create(runtime=runtime, principal=principal, draft=draft)
    response.headers["Location"] = f"/v1/mailings/{mailing.id}"
    return _tagged(response, mailing)


@router.get("")
async def list_mailings(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    status: MailingStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[Mailing]:
    return await service.list_mailings(
        runtime=runtime, principal=principal, status=status, limit=limit
    )


@router.get("/{mailing_id}")
async def get_mailing(
    mailing_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime, response: Response
) -> Mailing:
    """One mailing with its totals (recipients per status and exclusion reason)."""
    mailing = await service.get(runtime=runtime, principal=principal, mailing_id=mailing_id)
    return _tagged(response, mailing)


@router.patch("/{mailing_id}")
async def change_mailing(
    mailing_id: uuid.UUID,
    patch: MailingPatch,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Mailing:
    """Change a draft or scheduled mailing (409 once it started)."""
    mailing = await service.change(
        runtime=runtime,
        principal=principal,
        mailing_id=mailing_id,
        patch=patch,
        expected=required_versions(if_match),
    )
    return _tagged(response, mailing)


@router.post("/{mailing_id}/{action}")
async def act_on_mailing(
    mailing_id: uuid.UUID,
    action: Literal["send", "pause", "resume", "cancel"],
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Mailing:
    """``send`` (at ``scheduled_at``, or now), ``pause``, ``resume``, ``cancel``."""
    mailing = await service.act(
        runtime=runtime,
        principal=principal,
        mailing_id=mailing_id,
        action=action,
        expected=required_versions(if_match),
    )
    return _tagged(response, mailing)


@router.get("/{mailing_id}/validation")
async def validate_mailing(
    mailing_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> Validation:
    """Who a send now would reach, who not and why (missing template fields named)."""
    return await service.validate(runtime=runtime, principal=principal, mailing_id=mailing_id)


@router.get("/{mailing_id}/preview")
async def preview_mailing(
    mailing_id: uuid.UUID,
    person_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    organization_id: uuid.UUID | None = None,
) -> Preview:
    """The message as a chosen person would get it."""
    return await service.preview(
        runtime=runtime,
        principal=principal,
        mailing_id=mailing_id,
        person_id=person_id,
        organization_id=organization_id,
    )


@router.get("/{mailing_id}/recipients")
async def mailing_recipients(
    mailing_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    status: RecipientStatus | None = None,
    after: Annotated[uuid.UUID | None, Query(description="the last person id of the page")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> list[Recipient]:
    """The recipients resolved at send time, kept, with their state or exclusion reason."""
    return await service.list_recipients(
        runtime=runtime,
        principal=principal,
        mailing_id=mailing_id,
        status=status,
        after=after,
        limit=limit,
    )


@router.put("/{mailing_id}/letterhead")
async def upload_letterhead(
    mailing_id: uuid.UUID,
    file: Annotated[UploadFile, File(description="the company letterhead, PNG or JPEG")],
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> Mailing:
    """The letterhead a paper mailing's letters are printed under (before it starts)."""
    mailing = await service.set_letterhead(
        runtime=runtime,
        principal=principal,
        storage=storage_of(request),
        settings=service.settings_of(runtime),
        mailing_id=mailing_id,
        upload=file,
        expected=required_versions(if_match),
    )
    return _tagged(response, mailing)


@router.get("/{mailing_id}/print/{name}", response_class=Response)
async def download_print(
    mailing_id: uuid.UUID,
    name: Literal["letters", "envelopes"],
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    request: Request,
) -> Response:
    """A printed paper mailing's PDF: all its letters (A4), or its envelopes."""
    chunks = await service.open_print(
        runtime=runtime,
        principal=principal,
        storage=storage_of(request),
        mailing_id=mailing_id,
        name=name,
    )
    return StreamingResponse(
        chunks,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{mailing_id}-{name}.pdf"',
            "X-Content-Type-Options": "nosniff",
        },
    )
