"""HTTP of exports: organizations (any filter) or a list's members, as .xlsx or CSV."""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from clientele_directory.exports import service
from clientele_directory.exports.rules import (
    CsvEncoding,
    ExportFormat,
    HeaderLanguage,
    OrganizationExport,
)
from clientele_directory.tabular import CSV_CP1251_MEDIA_TYPE, CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE

router = APIRouter(tags=["export"])


def _response(export: service.Export) -> StreamingResponse:
    return StreamingResponse(
        export.chunks,
        media_type=export.media_type,
        headers={"Content-Disposition": export.disposition},
    )


@router.post(
    "/v1/organizations/export",
    response_class=StreamingResponse,
    responses={
        200: {"content": {XLSX_MEDIA_TYPE: {}, CSV_MEDIA_TYPE: {}, CSV_CP1251_MEDIA_TYPE: {}}}
    },
)
async def export_organizations(
    export: OrganizationExport, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> StreamingResponse:
    """Every organization the caller may see that matches the filter, as .xlsx or CSV
    (UTF-8 with a BOM, or Windows-1251; ``;``-separated, for Excel), by name; custom attributes
    as columns. INN, KPP, OGRN and phones are text cells in an .xlsx; with Russian headers the
    statuses are Russian too."""
    return _response(
        await service.export_organizations(runtime=runtime, principal=principal, export=export)
    )


@router.get(
    "/v1/lists/{list_id}/export",
    response_class=StreamingResponse,
    responses={
        200: {"content": {XLSX_MEDIA_TYPE: {}, CSV_MEDIA_TYPE: {}, CSV_CP1251_MEDIA_TYPE: {}}}
    },
)
async def export_list(
    list_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    format: Annotated[ExportFormat, Query()] = ExportFormat.XLSX,
    headers: Annotated[HeaderLanguage, Query()] = HeaderLanguage.EN,
    encoding: Annotated[
        CsvEncoding, Query(description="a CSV file's: utf-8 (with a BOM) or cp1251")
    ] = CsvEncoding.UTF8,
) -> StreamingResponse:
    """The members of a list the caller may see, as .xlsx or CSV."""
    return _response(
        await service.export_list(
            runtime=runtime,
            principal=principal,
            list_id=list_id,
            shape=service.Shape(format, headers, encoding),
        )
    )
