"""A file of persons read and checked in an import reader process (ADR 63): the sheet holding the
persons (the first whose first rows have a header naming a person: a companies sheet beside it
is passed over), the limits checked before any data row is read, the rows parsed a chunk at a
time (``imports.reader`` streams them to the import, as for organizations)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import IO

from clientele_directory.imports.headers import SCANNED_ROWS
from clientele_directory.imports.reader import Located, Opening, ReadPlan, read_chunks
from clientele_directory.person_imports.rules import (
    ParsedPerson,
    find_person_header,
    map_person_headers,
    parse_person_row,
)
from clientele_directory.tabular import TabularError, open_table, sheet_count

NO_PERSON_COLUMN = "no column names the person (name it «Фамилия», «Имя», «ФИО» or «Полное имя»)"


def _locate(file: IO[bytes], plan: ReadPlan) -> Located:
    """The sheet of persons, its header and the rows read to find it."""
    empty = True
    for index in range(sheet_count(file)):
        table = open_table(file, plan.filename, index)
        first = list(itertools.islice(table.rows, SCANNED_ROWS))
        found = find_person_header(first, plan.overrides)
        if found is not None:
            return Located(table, found[0], found[1], 1, first)
        table.rows.close()
        empty = empty and not any(first)
        file.seek(0)
    raise TabularError("the file is empty" if empty else NO_PERSON_COLUMN)


def person_chunks(
    file: IO[bytes], plan: ReadPlan, opened: Callable[[Opening], None] | None = None
) -> Iterator[list[ParsedPerson]]:
    """The file's persons checked, ``plan.chunk_rows`` at a time (``imports.reader``'s
    read_chunks); TabularError for a file that cannot be read, has no person column or has
    too many rows."""
    found = _locate(file, plan)
    mapping, problems = map_person_headers(found.names, plan.overrides)
    if problems:
        raise TabularError("; ".join(problems))
    yield from read_chunks(
        file,
        plan,
        found,
        lambda n, row: parse_person_row(n, mapping, row, plan.directions),
        opened,
    )
