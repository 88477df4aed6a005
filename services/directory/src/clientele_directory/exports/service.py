"""Export of organizations (any filter, or a list's members) to .xlsx or CSV, streamed.

Rows are read with a server-side cursor in batches and written as they come: CSV goes out row
by row; an .xlsx is written row by row in openpyxl's write-only mode into a temporary file and
sent once packed (the ZIP directory comes last). Direction-filtered like every read; headers are
the field names the import reads back (``?headers=ru`` for Russian ones, which it reads too).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from clientele_shared.auth.principal import Principal
from clientele_shared.http.problems import ProblemError
from clientele_shared.runtime import ServiceRuntime
from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.attributes.rules import AttributeDefinition, EntityKind
from clientele_directory.attributes.service import definitions_for
from clientele_directory.exports import queries
from clientele_directory.exports.rules import (
    COLUMNS,
    CP1251_TEXT_FIELDS,
    TEXT_COLUMNS,
    CsvEncoding,
    ExportFormat,
    HeaderLanguage,
    OrganizationExport,
    cell,
    cp1251_missing,
    cp1251_missing_pattern,
    disposition,
    header,
)
from clientele_directory.lists.service import list_filter, visible_list
from clientele_directory.search.queries import name_collation
from clientele_directory.search.rules import OrganizationFilter
from clientele_directory.search.service import filter_conditions, prepare_search
from clientele_directory.tabular import (
    CSV_CP1251_MEDIA_TYPE,
    CSV_MEDIA_TYPE,
    XLSX_MEDIA_TYPE,
    XlsxStream,
    csv_chunks,
)

_XLSX_CHUNK = 256 * 1024


@dataclass(frozen=True)
class Shape:
    """How an export is written: format, headers' language and a CSV file's encoding."""

    format: ExportFormat
    language: HeaderLanguage
    encoding: CsvEncoding = CsvEncoding.UTF8

    @property
    def cp1251(self) -> bool:
        return self.format is ExportFormat.CSV and self.encoding is CsvEncoding.CP1251


@dataclass(frozen=True)
class Export:
    """An export ready to stream: its bytes, media type and Content-Disposition."""

    chunks: AsyncIterator[bytes]
    media_type: str
    disposition: str


async def _prepare(
    session: AsyncSession,
    runtime: ServiceRuntime,
    principal: Principal,
    flt: OrganizationFilter,
    extra: Sequence[ColumnElement[bool]],
    shape: Shape,
) -> tuple[Any, list[AttributeDefinition]]:
    """The statement and attribute columns of an export; problems (422) surface here, before
    the response starts: a Windows-1251 export of an organization holding a character
    Windows-1251 lacks among them."""
    await prepare_search(session, runtime)
    conditions = await filter_conditions(session, principal, flt)
    conditions.extend(extra)
    stmt = queries.organizations_statement(conditions, await name_collation(session))
    definitions = sorted(
        (await definitions_for(session, EntityKind.ORGANIZATION)).values(), key=lambda d: d.key
    )
    if shape.cp1251:
        for text in header(shape.language, definitions):
            if (missing := cp1251_missing(text)) is not None:
                raise _not_cp1251(f"the column «{text}»", missing)
        found = await queries.first_holding(
            session, conditions, CP1251_TEXT_FIELDS, cp1251_missing_pattern()
        )
        if found is not None:
            raise _not_cp1251(f"the organization «{found[0]}»", found[1])
    return stmt, definitions


def _not_cp1251(where: str, character: str) -> ProblemError:
    return ProblemError(
        422,
        "Not Windows-1251",
        f"{where} holds «{character}» (U+{ord(character):04X}), which Windows-1251 lacks: "
        "export in UTF-8 (encoding utf-8 or .xlsx), or correct it; nothing was exported.",
        kind="not-windows-1251",
    )


async def _rows(
    runtime: ServiceRuntime,
    stmt: Any,
    definitions: list[AttributeDefinition],
    language: HeaderLanguage,
) -> AsyncIterator[list[list[Any]]]:
    """Batches of export rows, read through a server-side cursor."""
    async with runtime.sessions() as session, session.begin():
        await prepare_search(session, runtime)
        async for partition in queries.batches(session, stmt):
            yield [
                [cell(row, field, language) for field, _ in COLUMNS]
                + [(row.attributes or {}).get(d.key) for d in definitions]
                for row in partition
            ]


async def _stream(
    runtime: ServiceRuntime,
    stmt: Any,
    definitions: list[AttributeDefinition],
    head: list[str],
    shape: Shape,
    title: str,
) -> AsyncIterator[bytes]:
    if shape.format is ExportFormat.CSV:
        first = True
        async for batch in _rows(runtime, stmt, definitions, shape.language):
            for chunk_index, chunk in enumerate(csv_chunks(head, batch, shape.encoding.value)):
                if chunk_index == 0 and not first:
                    continue  # the header (and the BOM) only once
                yield chunk
            first = False
        if first:
            for chunk in csv_chunks(head, [], shape.encoding.value):
                yield chunk
        return
    text_columns = [index for index, (field, _) in enumerate(COLUMNS) if field in TEXT_COLUMNS]
    xlsx = XlsxStream(head, title, text_columns)
    async for batch in _rows(runtime, stmt, definitions, shape.language):
        await asyncio.to_thread(_append_rows, xlsx, batch)  # off the event loop
    packed = await asyncio.to_thread(xlsx.finish)
    try:
        while chunk := await asyncio.to_thread(packed.read, _XLSX_CHUNK):
            yield chunk
    finally:
        packed.close()


def _append_rows(xlsx: XlsxStream, rows: list[list[Any]]) -> None:
    for row in rows:
        xlsx.append(row)


def _export(
    runtime: ServiceRuntime,
    stmt: Any,
    definitions: list[AttributeDefinition],
    shape: Shape,
    name: str,
) -> Export:
    head = header(shape.language, definitions)
    return Export(
        chunks=_stream(runtime, stmt, definitions, head, shape, name),
        media_type=(
            XLSX_MEDIA_TYPE
            if shape.format is ExportFormat.XLSX
            else CSV_CP1251_MEDIA_TYPE
            if shape.cp1251
            else CSV_MEDIA_TYPE
        ),
        disposition=disposition(name, shape.format),
    )


async def export_organizations(
    *, runtime: ServiceRuntime, principal: Principal, export: OrganizationExport
) -> Export:
    """Every organization the caller may see that matches the filter, by name."""
    shape = Shape(export.format, export.headers, export.encoding)
    async with runtime.sessions() as session, session.begin():
        stmt, definitions = await _prepare(session, runtime, principal, export.filter, (), shape)
    return _export(runtime, stmt, definitions, shape, "organizations")


async def export_list(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    list_id: uuid.UUID,
    shape: Shape,
) -> Export:
    """The members of a list the caller may see."""
    async with runtime.sessions() as session, session.begin():
        found = await visible_list(session, principal, list_id)
        flt, extra = list_filter(found)
        stmt, definitions = await _prepare(session, runtime, principal, flt, extra, shape)
    return _export(runtime, stmt, definitions, shape, found.name)
