"""Export of organizations (any filter, or a list's members) to .xlsx or CSV, streamed.

Rows are read with a server-side cursor in batches and written as they come: CSV goes out row
by row; an .xlsx is written row by row in openpyxl's write-only mode into a temporary file and
sent once packed (the ZIP directory comes last). Direction-filtered like every read; headers are
the field names the import reads back (``?headers=ru`` for Russian ones, which it reads too).
"""

from __future__ import annotations

import asyncio
import enum
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.auth.principal import Principal
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.api.blocking import organization_blocked_expr
from clientele_directory.api.lists import list_filter, visible_list
from clientele_directory.attributes.rules import AttributeDefinition, EntityKind
from clientele_directory.attributes.service import definitions_for
from clientele_directory.search.queries import name_collation
from clientele_directory.search.rules import OrganizationFilter
from clientele_directory.search.service import filter_conditions, prepare_search
from clientele_directory.tables import organizations
from clientele_directory.tabular import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, XlsxStream, csv_chunks

router = APIRouter(tags=["export"])
BATCH = 1000
_XLSX_CHUNK = 256 * 1024


class ExportFormat(enum.StrEnum):
    XLSX = "xlsx"
    CSV = "csv"


class HeaderLanguage(enum.StrEnum):
    EN = "en"
    RU = "ru"


COLUMNS: list[tuple[str, str]] = [
    ("id", "id"),
    ("legal_name", "Наименование"),
    ("short_name", "Краткое наименование"),
    ("inn", "ИНН"),
    ("kpp", "КПП"),
    ("ogrn", "ОГРН"),
    ("country", "Страна"),
    ("status", "Статус"),
    ("industry", "Отрасль"),
    ("phones", "Телефоны"),
    ("emails", "E-mail"),
    ("sites", "Сайт"),
    ("categories", "Категории"),
    ("tags", "Теги"),
    ("directions", "Направления"),
    ("legal_address", "Юридический адрес"),
    ("actual_address", "Фактический адрес"),
    ("postal_address", "Почтовый адрес"),
    ("responsible_employee_id", "Ответственный"),
    ("blocked", "blocked"),
    ("created_at", "created_at"),
    ("updated_at", "updated_at"),
]
"""Exported columns: the field (the English header) and the Russian header."""


class OrganizationExport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filter: OrganizationFilter = Field(default_factory=OrganizationFilter)
    format: ExportFormat = ExportFormat.XLSX
    headers: HeaderLanguage = HeaderLanguage.EN


def _value(row: Any, field: str) -> Any:
    value = getattr(row, field)
    if field == "phones":
        return [
            phone["number"] + (f" доб. {phone['extension']}" if phone.get("extension") else "")
            for phone in value or []
        ]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _header(language: HeaderLanguage, definitions: Sequence[AttributeDefinition]) -> list[str]:
    base = [ru if language is HeaderLanguage.RU else en for en, ru in COLUMNS]
    return base + [(d.label if language is HeaderLanguage.RU else d.key) for d in definitions]


async def _prepare(
    session: AsyncSession,
    runtime: CurrentRuntime,
    principal: Principal,
    flt: OrganizationFilter,
    extra: Sequence[ColumnElement[bool]],
) -> tuple[Any, list[AttributeDefinition]]:
    """The statement and attribute columns of an export; problems (422) surface here, before
    the response starts."""
    await prepare_search(session, runtime)
    conditions = await filter_conditions(session, principal, flt)
    conditions.extend(extra)
    collation = await name_collation(session)
    name = organizations.c.legal_name
    ordered = name.collate(collation) if collation else name
    definitions = sorted(
        (await definitions_for(session, EntityKind.ORGANIZATION)).values(), key=lambda d: d.key
    )
    stmt = (
        select(organizations, organization_blocked_expr().label("blocked"))
        .where(*conditions)
        .order_by(ordered, organizations.c.id)
        .execution_options(yield_per=BATCH)
    )
    return stmt, definitions


async def _rows(
    runtime: CurrentRuntime, stmt: Any, definitions: list[AttributeDefinition]
) -> AsyncIterator[list[list[Any]]]:
    """Batches of export rows, read through a server-side cursor."""
    async with runtime.sessions() as session, session.begin():
        await prepare_search(session, runtime)
        result = await session.stream(stmt)
        async for partition in result.partitions(BATCH):
            yield [
                [_value(row, field) for field, _ in COLUMNS]
                + [(row.attributes or {}).get(d.key) for d in definitions]
                for row in partition
            ]


def _disposition(name: str, fmt: ExportFormat) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    filename = f"{name}-{stamp}.{fmt.value}"
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


async def _stream(
    runtime: CurrentRuntime,
    stmt: Any,
    definitions: list[AttributeDefinition],
    header: list[str],
    fmt: ExportFormat,
    title: str,
) -> AsyncIterator[bytes]:
    if fmt is ExportFormat.CSV:
        first = True
        async for batch in _rows(runtime, stmt, definitions):
            for chunk_index, chunk in enumerate(csv_chunks(header, batch)):
                if chunk_index == 0 and not first:
                    continue  # the header (and the BOM) only once
                yield chunk
            first = False
        if first:
            for chunk in csv_chunks(header, []):
                yield chunk
        return
    xlsx = XlsxStream(header, title)
    async for batch in _rows(runtime, stmt, definitions):
        for row in batch:
            xlsx.append(row)
    packed = await asyncio.to_thread(xlsx.finish)
    try:
        while chunk := await asyncio.to_thread(packed.read, _XLSX_CHUNK):
            yield chunk
    finally:
        packed.close()


def _response(
    runtime: CurrentRuntime,
    stmt: Any,
    definitions: list[AttributeDefinition],
    language: HeaderLanguage,
    fmt: ExportFormat,
    name: str,
) -> StreamingResponse:
    header = _header(language, definitions)
    return StreamingResponse(
        _stream(runtime, stmt, definitions, header, fmt, name),
        media_type=XLSX_MEDIA_TYPE if fmt is ExportFormat.XLSX else CSV_MEDIA_TYPE,
        headers={"Content-Disposition": _disposition(name, fmt)},
    )


@router.post(
    "/v1/organizations/export",
    response_class=StreamingResponse,
    responses={200: {"content": {XLSX_MEDIA_TYPE: {}, CSV_MEDIA_TYPE: {}}}},
)
async def export_organizations(
    export: OrganizationExport, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> StreamingResponse:
    """Every organization the caller may see that matches the filter, as .xlsx or CSV
    (UTF-8 with a BOM, ``;``-separated, for Excel), by name; custom attributes as columns."""
    async with runtime.sessions() as session, session.begin():
        stmt, definitions = await _prepare(session, runtime, principal, export.filter, ())
    return _response(runtime, stmt, definitions, export.headers, export.format, "organizations")


@router.get(
    "/v1/lists/{list_id}/export",
    response_class=StreamingResponse,
    responses={200: {"content": {XLSX_MEDIA_TYPE: {}, CSV_MEDIA_TYPE: {}}}},
)
async def export_list(
    list_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    format: Annotated[ExportFormat, Query()] = ExportFormat.XLSX,
    headers: Annotated[HeaderLanguage, Query()] = HeaderLanguage.EN,
) -> StreamingResponse:
    """The members of a list the caller may see, as .xlsx or CSV."""
    async with runtime.sessions() as session, session.begin():
        found = await visible_list(session, principal, list_id)
        flt, extra = list_filter(found)
        stmt, definitions = await _prepare(session, runtime, principal, flt, extra)
    return _response(runtime, stmt, definitions, headers, format, found.name)
