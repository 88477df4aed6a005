"""A file of persons read and checked in an import reader process (ADR 63): the sheet holding the
persons (the first whose first rows have a header naming a person: a companies sheet beside it
is passed over), the limits checked before any data row is read, the rows parsed a chunk at a
time (``imports.reader`` streams them to the import, as for organizations)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import IO, Any

from clientele_directory.imports.headers import SCANNED_ROWS
from clientele_directory.imports.reader import Opening, ReadPlan
from clientele_directory.imports.rules import is_blank
from clientele_directory.person_imports.rules import (
    ParsedPerson,
    find_person_header,
    map_person_headers,
    parse_person_row,
)
from clientele_directory.tabular import Table, TabularError, last_row, open_table, sheet_count

NO_PERSON_COLUMN = "no column names the person (name it «Фамилия», «Имя», «ФИО» or «Полное имя»)"


def _locate(
    file: IO[bytes], plan: ReadPlan
) -> tuple[Table, list[str | None], int, list[list[str | None]]]:
    """The sheet of persons, its header, the header's row and the rows read to find it."""
    empty = True
    for index in range(sheet_count(file)):
        table = open_table(file, plan.filename, index)
        first = list(itertools.islice(table.rows, SCANNED_ROWS))
        found = find_person_header(first, plan.overrides)
        if found is not None:
            return table, found[0], found[1], first
        table.rows.close()
        empty = empty and not any(first)
        file.seek(0)
    raise TabularError("the file is empty" if empty else NO_PERSON_COLUMN)


def person_chunks(
    file: IO[bytes], plan: ReadPlan, opened: Callable[[Opening], None] | None = None
) -> Iterator[list[ParsedPerson]]:
    """The file's persons checked, ``plan.chunk_rows`` at a time; TabularError for a file that
    cannot be read, has no person column or has too many rows (counted before any data row is
    read, blank rows and an .xlsx's row numbers included)."""
    table, names, header_row, first = _locate(file, plan)
    mapping, problems = map_person_headers(names, plan.overrides)
    if problems:
        raise TabularError("; ".join(problems))
    start = header_row + 1
    position = file.tell()
    file.seek(0)
    total = max(last_row(file, plan.filename, table.index) - start + 1, 0)
    file.seek(position)
    if total > plan.max_rows:
        raise TabularError(f"{plan.too_many} (the file has {total:,} rows)")
    if opened is not None:
        source: dict[str, Any] = {"header_row": header_row, "header_rows": 1}
        if table.sheet is not None:
            source["sheet"] = table.sheet
        if table.encoding is not None:
            source["encoding"] = table.encoding
        opened(Opening(names, total, source))
    rows = itertools.chain(first[start - 1 :], table.rows)
    chunk: list[ParsedPerson] = []
    for number, row in enumerate(rows, start=start):
        if number >= start + plan.max_rows:
            raise TabularError(plan.too_many)
        if is_blank(row):
            continue
        parsed = parse_person_row(number, mapping, row, plan.directions)
        parsed.cells = row
        chunk.append(parsed)
        if len(chunk) >= plan.chunk_rows:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
