"""HTTP of e-mail capture: an uploaded .eml or Outlook .msg becomes an interaction with
attachments."""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.http.concurrency import etag
from clientele_shared.http.problems import ProblemError
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, File, Form, Response, UploadFile, status

from clientele_interactions.capture import service
from clientele_interactions.capture.parsing import CapturedMessage, NotMail, UnreadableMessage
from clientele_interactions.capture.rules import CapturedEmail
from clientele_interactions.dependencies import ClockDep, Settings, Storage, Writer, read_upload

router = APIRouter(prefix="/v1/interactions/email", tags=["e-mail capture"])


def _unreadable(detail: str) -> ProblemError:
    return ProblemError(422, "Unreadable Message", detail, kind="unreadable-message")


@router.post("", status_code=status.HTTP_201_CREATED)
async def capture_email(
    file: Annotated[UploadFile, File(description="an .eml or Outlook .msg file")],
    principal: Writer,
    runtime: CurrentRuntime,
    settings: Settings,
    clock: ClockDep,
    storage: Storage,
    response: Response,
    organization_id: Annotated[uuid.UUID | None, Form()] = None,
    responsible_employee_id: Annotated[uuid.UUID | None, Form()] = None,
) -> CapturedEmail:
    """Log an e-mail from its file. Sender and recipients are matched to persons by address;
    the client is ``organization_id`` or, when omitted, the one client where the matched persons
    work (422 when there is none or several). A message from an employee or one of
    ``OWN_EMAIL_DOMAINS`` is outgoing, any other incoming; the responsible employee is
    ``responsible_employee_id`` or the first employee among the addresses. Attachments are
    stored under the usual checks; those refused are listed in ``skipped_attachments``. Unknown
    addresses are reported for the user to link or create. The same message (Message-ID) is
    captured once per client (409); mail without one, by a digest of its content. An Outlook
    appointment is logged as a meeting at its start (422 while it lies ahead); contacts, tasks
    and notes are refused (422 ``not-mail``). Beyond ``EMAIL_MAX_PARTS``,
    ``EMAIL_MAX_RECIPIENTS`` or ``EMAIL_MAX_DEPTH`` a file is refused (422)."""
    data = await read_upload(file, settings.email_max_bytes)
    try:
        message: CapturedMessage = await service.read_message(settings, file.filename, data)
    except NotMail as exc:
        raise ProblemError(422, "Not An E-mail", str(exc), kind="not-mail") from None
    except UnreadableMessage as exc:
        raise _unreadable(str(exc)) from None
    captured = await service.capture_message(
        runtime=runtime,
        storage=storage,
        settings=settings,
        principal=principal,
        message=message,
        now=clock.now(),
        origin=file.filename or "an uploaded file",
        organization_id=organization_id,
        responsible_employee_id=responsible_employee_id,
    )
    response.headers["ETag"] = etag(captured.interaction.version)
    response.headers["Location"] = f"/v1/interactions/{captured.interaction.id}"
    return captured
