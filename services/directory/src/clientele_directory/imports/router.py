"""HTTP of imports: a file of organizations in, a job out (202); the job, its cancel and its
report (a page at a time, the rows with errors first, or the failed rows as an .xlsx)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal, Writer
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Depends, Form, Header, Query, Request, Response, UploadFile, status
from fastapi.responses import StreamingResponse

from clientele_directory.imports import messages, service
from clientele_directory.imports.jobs import JobRunner
from clientele_directory.imports.rules import ImportJob, ImportMode, ListUpdate, ReportPage
from clientele_directory.tabular import XLSX_MEDIA_TYPE

router = APIRouter(prefix="/v1/organizations", tags=["import"])
RUNNER_STATE_KEY = "import_jobs"


def _language(
    accept_language: Annotated[
        str | None,
        Header(
            max_length=500,
            description="ru for messages in Russian (their codes stay English); else English",
        ),
    ] = None,
) -> str:
    return messages.language(accept_language)


Language = Annotated[str, Depends(_language)]


@dataclass(frozen=True)
class ImportForm:
    """The form fields every import takes besides its file."""

    mode: ImportMode
    mapping: str | None
    directions: str | None


def _import_form(
    mode: Annotated[ImportMode, Form(description="dry_run, all_or_nothing or valid_rows")] = (
        ImportMode.DRY_RUN
    ),
    mapping: Annotated[
        str | None,
        Form(description='JSON {"header as written": "field" or null}; wins over detection'),
    ] = None,
    directions: Annotated[
        str | None,
        Form(
            description="comma-separated directions of new records whose row names none"
            " (default: yours)"
        ),
    ] = None,
) -> ImportForm:
    return ImportForm(mode, mapping, directions)


ImportFields = Annotated[ImportForm, Depends(_import_form)]


@router.post("/import", status_code=status.HTTP_202_ACCEPTED)
async def import_organizations(
    file: UploadFile,
    principal: Writer,
    runtime: CurrentRuntime,
    request: Request,
    response: Response,
    form: ImportFields,
    lists: Annotated[
        ListUpdate,
        Form(
            description="merge: a row's phones, e-mails, sites, categories and tags are added"
            " to an existing organization's; replace: they replace them"
        ),
    ] = ListUpdate.MERGE,
) -> ImportJob:
    """Queue an import of organizations from an .xlsx or CSV file with a header row (found
    among the first rows of the first sheet that has one; the job's ``source`` says where);
    202 with the job (``Location``), which runs in the background.

    A dry run reports per row what would be created, updated (with the changes), left unchanged
    or skipped and why, and writes nothing. ``all_or_nothing`` writes every row or none (the
    job ends ``rejected`` when any row is bad); ``valid_rows`` writes the good rows and reports
    the rest.
    Updates and creations are audited and published like the API's. A broken file ends the job
    ``failed`` with its problem; a mapping that is no mapping is a 422 at once. An ``id`` column
    (an export's) names the organization a row updates.
    """
    job = await service.submit(
        runtime,
        principal,
        file,
        mode=form.mode,
        mapping=form.mapping,
        directions=form.directions,
        replace_lists=lists is ListUpdate.REPLACE,
    )
    runner: JobRunner | None = getattr(request.app.state, RUNNER_STATE_KEY, None)
    if runner is not None:
        runner.wake()
    response.headers["Location"] = f"/v1/organizations/imports/{job.id}"
    return job


@router.get("/imports/{job_id}")
async def get_import(
    job_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime, lang: Language
) -> ImportJob:
    """An import job: its state, progress and counts so far (404 outside the caller's
    directions)."""
    return await service.get_job(runtime, principal, job_id, lang)


@router.post("/imports/{job_id}/cancel")
async def cancel_import(
    job_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime, lang: Language
) -> ImportJob:
    """Cancel an import: nothing of it is written (a running one stops at its next chunk)."""
    return await service.cancel_job(runtime, principal, job_id, lang)


@router.get("/imports/{job_id}/report")
async def import_report(
    job_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    lang: Language,
    after: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> ReportPage:
    """The report so far, a page at a time: rows with errors first, then the others by row
    (messages in Russian with ``Accept-Language: ru``)."""
    return await service.report_page(
        runtime, principal, job_id, after=after, limit=limit, lang=lang
    )


@router.get("/imports/{job_id}/report.xlsx", response_class=StreamingResponse)
async def import_report_xlsx(
    job_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime, lang: Language
) -> StreamingResponse:
    """The rows with errors as the file had them, with a reason column, as an .xlsx."""
    workbook = await service.failed_rows_xlsx(runtime, principal, job_id, lang)

    def chunks() -> Iterator[bytes]:
        with workbook:
            while data := workbook.read(1 << 16):
                yield data

    return StreamingResponse(
        chunks(),
        media_type=XLSX_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="import-{job_id}-errors.xlsx"'},
    )
