"""HTTP of imports: an .xlsx or CSV file of organizations in, the per-row report out."""

from __future__ import annotations

from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Form, Response, UploadFile

from clientele_directory.imports import service
from clientele_directory.imports.rules import ImportMode, ImportReport, ListUpdate

router = APIRouter(prefix="/v1/organizations", tags=["import"])


@router.post("/import", response_model=ImportReport)
async def import_organizations(
    file: UploadFile,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    mode: Annotated[ImportMode, Form(description="dry_run, all_or_nothing or valid_rows")] = (
        ImportMode.DRY_RUN
    ),
    mapping: Annotated[
        str | None,
        Form(description='JSON {"header as written": "field" or null}; wins over detection'),
    ] = None,
    directions: Annotated[
        str | None,
        Form(description="comma-separated directions of rows that name none (default: yours)"),
    ] = None,
    lists: Annotated[
        ListUpdate,
        Form(
            description="merge: a row's phones, e-mails, sites, categories and tags are added"
            " to an existing organization's; replace: they replace them"
        ),
    ] = ListUpdate.MERGE,
) -> Response:
    """Import organizations from an .xlsx (first sheet) or CSV file with a header row.

    A dry run reports per row what would be created, updated (with the changes), left unchanged
    or skipped and why, and writes nothing. ``all_or_nothing`` writes every row or none (422
    with the report when any row is bad); ``valid_rows`` writes the good rows and reports the
    rest. Updates and creations are audited and published like the API's. An ``id`` column
    (an export's) names the organization a row updates. A broken file is a 422 problem.
    """
    report = await service.import_file(
        runtime,
        principal,
        file.file,
        file.filename,
        mode=mode,
        mapping=mapping,
        directions=directions,
        replace_lists=lists is ListUpdate.REPLACE,
    )
    return Response(report, media_type="application/json")
