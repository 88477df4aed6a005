"""HTTP of imports of persons (ADR 63): a file of persons (contacts) in, a job out (202); the job,
its cancel and its report as for organizations (``imports.router``)."""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal, Writer
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Query, Request, Response, UploadFile, status
from fastapi.responses import StreamingResponse

from clientele_directory.imports import router as imports
from clientele_directory.imports import service
from clientele_directory.imports.jobs import JobRunner
from clientele_directory.imports.rules import ImportJob, ImportKind, ReportPage

router = APIRouter(prefix="/v1/persons", tags=["import"])


@router.post("/import", status_code=status.HTTP_202_ACCEPTED)
async def import_persons(
    file: UploadFile,
    principal: Writer,
    runtime: CurrentRuntime,
    request: Request,
    response: Response,
    form: imports.ImportFields,
) -> ImportJob:
    """Queue an import of persons (contacts, as amoCRM and Bitrix24 export them, or an Excel
    list) from an .xlsx or CSV file; 202 with the job (``Location``).

    A row matches a person you see by e-mail, then by phone, and updates him (names and
    birthday replaced, phones, e-mails and directions added); else it creates a person in the
    directions. A «Компания» or «ИНН» column links the person to the one organization you see
    so named (else a warning, and the person is imported without the link). No consent unless
    a consent column says yes. Modes, report and cancel as for organizations.
    """
    job = await service.submit(
        runtime,
        principal,
        file,
        mode=form.mode,
        mapping=form.mapping,
        directions=form.directions,
        kind=ImportKind.PERSON,
    )
    runner: JobRunner | None = getattr(request.app.state, imports.RUNNER_STATE_KEY, None)
    if runner is not None:
        runner.wake()
    response.headers["Location"] = f"/v1/persons/imports/{job.id}"
    return job


@router.get("/imports/{job_id}")
async def get_import(
    job_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime, lang: imports.Language
) -> ImportJob:
    """An import job: its state, progress and counts so far (404 outside your directions)."""
    return await service.get_job(runtime, principal, job_id, lang)


@router.post("/imports/{job_id}/cancel")
async def cancel_import(
    job_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime, lang: imports.Language
) -> ImportJob:
    """Cancel an import: nothing of it is written."""
    return await service.cancel_job(runtime, principal, job_id, lang)


@router.get("/imports/{job_id}/report")
async def import_report(
    job_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    lang: imports.Language,
    after: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> ReportPage:
    """The report so far, a page at a time, rows with errors first."""
    return await service.report_page(
        runtime, principal, job_id, after=after, limit=limit, lang=lang
    )


@router.get("/imports/{job_id}/report.xlsx", response_class=StreamingResponse)
async def import_report_xlsx(
    job_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime, lang: imports.Language
) -> StreamingResponse:
    """The rows with errors as the file had them, with a reason column, as an .xlsx."""
    return await imports.import_report_xlsx(job_id, principal, runtime, lang)
