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
from clientele_shared.runtime import ServiceRuntime
from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.attributes.rules import AttributeDefinition, EntityKind
from clientele_directory.attributes.service import definitions_for
from clientele_directory.exports import queries
from clientele_directory.exports.rules import (
    COLUMNS,
    ExportFormat,
    HeaderLanguage,
    OrganizationExport,
    cell,
    disposition,
    header,
)
from clientele_directory.lists.service import list_filter, visible_list
from clientele_directory.search.queries import name_collation
from clientele_directory.search.rules import OrganizationFilter
from clientele_directory.search.service import filter_conditions, prepare_search
from clientele_directory.tabular import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, XlsxStream, csv_chunks

_XLSX_CHUNK = 256 * 1024


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
) -> tuple[Any, list[AttributeDefinition]]:
    """The statement and attribute columns of an export; problems (422) surface here, before
    the response starts."""
    await prepare_search(session, runtime)
    conditions = await filter_conditions(session, principal, flt)
    conditions.extend(extra)
    stmt = queries.organizations_statement(conditions, await name_collation(session))
    definitions = sorted(
        (await definitions_for(session, EntityKind.ORGANIZATION)).values(), key=lambda d: d.key
    )
    return stmt, definitions


async def _rows(
    runtime: ServiceRuntime, stmt: Any, definitions: list[AttributeDefinition]
) -> AsyncIterator[list[list[Any]]]:
    """Batches of export rows, read through a server-side cursor."""
    async with runtime.sessions() as session, session.begin():
        await prepare_search(session, runtime)
        async for partition in queries.batches(session, stmt):
            yield [
                [cell(row, field) for field, _ in COLUMNS]
                + [(row.attributes or {}).get(d.key) for d in definitions]
                for row in partition
            ]


async def _stream(
    runtime: ServiceRuntime,
    stmt: Any,
    definitions: list[AttributeDefinition],
    head: list[str],
    fmt: ExportFormat,
    title: str,
) -> AsyncIterator[bytes]:
    if fmt is ExportFormat.CSV:
        first = True
        async for batch in _rows(runtime, stmt, definitions):
            for chunk_index, chunk in enumerate(csv_chunks(head, batch)):
                if chunk_index == 0 and not first:
                    continue  # the header (and the BOM) only once
                yield chunk
            first = False
        if first:
            for chunk in csv_chunks(head, []):
                yield chunk
        return
    xlsx = XlsxStream(head, title)
    async for batch in _rows(runtime, stmt, definitions):
        for row in batch:
            xlsx.append(row)
    packed = await asyncio.to_thread(xlsx.finish)
    try:
        while chunk := await asyncio.to_thread(packed.read, _XLSX_CHUNK):
            yield chunk
    finally:
        packed.close()


def _export(
    runtime: ServiceRuntime,
    stmt: Any,
    definitions: list[AttributeDefinition],
    language: HeaderLanguage,
    fmt: ExportFormat,
    name: str,
) -> Export:
    head = header(language, definitions)
    return Export(
        chunks=_stream(runtime, stmt, definitions, head, fmt, name),
        media_type=XLSX_MEDIA_TYPE if fmt is ExportFormat.XLSX else CSV_MEDIA_TYPE,
        disposition=disposition(name, fmt),
    )


async def export_organizations(
    *, runtime: ServiceRuntime, principal: Principal, export: OrganizationExport
) -> Export:
    """Every organization the caller may see that matches the filter, by name."""
    async with runtime.sessions() as session, session.begin():
        stmt, definitions = await _prepare(session, runtime, principal, export.filter, ())
    return _export(runtime, stmt, definitions, export.headers, export.format, "organizations")


async def export_list(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    list_id: uuid.UUID,
    fmt: ExportFormat,
    language: HeaderLanguage,
) -> Export:
    """The members of a list the caller may see."""
    async with runtime.sessions() as session, session.begin():
        found = await visible_list(session, principal, list_id)
        flt, extra = list_filter(found)
        stmt, definitions = await _prepare(session, runtime, principal, flt, extra)
    return _export(runtime, stmt, definitions, language, fmt, found.name)
