"""The rows of an import file, read and checked in a worker process (ADR 11).

Reading the .xlsx and validating every row (checksums, phones, e-mails) is half of an import's
Python. In the service process it held the interpreter lock against the chunk being matched
and written; in a worker process it runs on another core. The workers are a process pool
of the process running the import (`IMPORT_READERS` of them, one by default: the first is
started when the job starts, ADR 72), which is an import job's child process: they end with the
job (ADR 62). A worker reads a temporary
copy of the upload and streams the parsed rows, a chunk at a time, to a unix socket the import
listens on: the socket's buffers are all it gets ahead, so memory holds a few chunks, never the
file's rows. The worker sends frames of at most ``FRAME_ROWS`` rows, which the import gathers
into its chunks of ``chunk_rows``: what a worker holds at once (the frame being parsed and its
pickle) is a tenth of a chunk, and its peak 35 MB lower (ADR 66). The end of the stream ends the
rows; the pool's future says whether the file was read to the end or why not (TabularError).
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import pickle
import shutil
import socket
import struct
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from typing import IO, Any

from clientele_shared.memory import tune_garbage_collector
from clientele_shared.worker_processes import end_with_parent

from clientele_directory.imports.headers import (
    SCANNED_ROWS,
    Header,
    find_header,
    map_headers,
    person_columns,
)
from clientele_directory.imports.rules import ParsedRow, is_blank, parse_row
from clientele_directory.tabular import Table, TabularError, last_row, open_table, sheet_count

_FRAME = struct.Struct("!Q")
"""A frame on the socket: its pickle's length, then the pickle."""
FRAME_ROWS = 250
"""Rows a worker parses and sends at a time (at most the plan's ``chunk_rows``)."""


@dataclass(frozen=True)
class ReadPlan:
    """What the worker needs besides the file: the column mapping's inputs and the limits."""

    filename: str | None
    overrides: dict[str, str | None]
    labels: dict[str, str]
    directions: list[str]
    max_rows: int
    too_many: str
    chunk_rows: int
    rows: (
        Callable[[IO[bytes], ReadPlan, Callable[[Opening], None] | None], Iterator[list[Any]]]
        | None
    ) = None
    """What reads the rows, when not :func:`parsed_chunks` (organizations): a module's function
    (the worker gets it by name), e.g. the import of persons' (ADR 63)."""
    archived: dict[str, str] = field(default_factory=dict)
    """Archived attributes' labels by key: columns an export writes that the import reads as
    nothing, never as a sign of a persons file."""


@dataclass(frozen=True)
class Opening:
    """What the reader knows before the first row: the header, the rows the file has (its
    last row number, blank rows included, the rows up to the header's end excluded) and where
    the header was read."""

    header: list[str | None]
    rows: int
    source: dict[str, Any] = field(default_factory=dict)
    """``sheet`` (an .xlsx file's), ``header_row`` and ``header_rows`` (the file's row numbers)
    and ``encoding`` (a CSV file's)."""


class PersonsFile(TabularError):
    """A file of persons (contacts, as amoCRM and Bitrix24 export them), not of organizations:
    the import takes organizations only, and reading people's phones and e-mails as their
    company's would make wrong organizations (ADR 58)."""

    @classmethod
    def of(cls, columns: list[str]) -> PersonsFile:
        named = ", ".join(f"«{column}»" for column in columns)
        return cls(
            f"the file is a list of persons (contacts), as amoCRM and Bitrix24 export them: its "
            f"columns {named} name people, and the import of organizations takes organizations "
            "only, so nothing was imported; to import the file as persons send it to "
            "POST /v1/persons/import; to import companies export them (amoCRM: Компании → "
            "Экспорт) and import that file, or map those columns to null to read each row as "
            "its company"
        )


def _locate(file: IO[bytes], plan: ReadPlan) -> tuple[Table, Header, list[list[str | None]]]:
    """The sheet holding the organizations (the first whose first rows have a header naming
    them and no person), its header and the rows read to find it; PersonsFile when the sheets
    list persons only, TabularError when no sheet has a header. The sheets passed over are
    closed (their shared strings freed) before the next is opened."""
    empty = True
    persons: list[str] = []
    attributes = plan.labels | plan.archived
    for index in range(sheet_count(file)):
        table = open_table(file, plan.filename, index)
        first = list(itertools.islice(table.rows, SCANNED_ROWS))
        header = find_header(first, plan.labels, plan.overrides)
        people = person_columns(header.names if header else [], plan.overrides, attributes) or next(
            (
                found
                for row in first
                if len(found := person_columns(row, plan.overrides, attributes)) > 1
            ),
            [],
        )
        if header is not None and not people:
            return table, header, first
        table.rows.close()
        persons = persons or people
        empty = empty and not any(first)
        file.seek(0)
    if persons:
        raise PersonsFile.of(persons)
    if empty:
        raise TabularError("the file is empty")
    raise TabularError(
        "no column names the organization (name it «Наименование»/«legal_name» or «ИНН»)"
    )


def parsed_chunks(
    file: IO[bytes], plan: ReadPlan, opened: Callable[[Opening], None] | None = None
) -> Iterator[list[ParsedRow]]:
    """The file's organizations checked, ``plan.chunk_rows`` at a time (:func:`read_chunks`);
    the header is looked for in the first rows of each sheet (headers.find_header)."""
    table, header, first = _locate(file, plan)
    mapping, problems = map_headers(header.names, plan.labels, plan.overrides)
    if problems:
        raise TabularError("; ".join(problems))
    found = Located(table, header.names, header.row, header.rows, first)
    yield from read_chunks(
        file, plan, found, lambda n, row: parse_row(n, mapping, row, plan.directions), opened
    )


@dataclass(frozen=True)
class Located:
    """Where a file's records are: the sheet, its header, the header's first row and its
    number of rows, and the rows read to find it."""

    table: Table
    names: list[str | None]
    row: int
    rows: int
    first: list[list[str | None]]


def read_chunks(
    file: IO[bytes],
    plan: ReadPlan,
    found: Located,
    parse: Callable[[int, list[str | None]], Any],
    opened: Callable[[Opening], None] | None = None,
) -> Iterator[list[Any]]:
    """The data rows below a header, each parsed (``parse(number, cells)``, the cells kept on
    it), ``plan.chunk_rows`` at a time; TabularError for a file that cannot be read or has too
    many rows. The rows are counted before any data row is read (blank rows and the numbers an
    .xlsx gives its rows count), then ``opened`` is told the header, the count and where the
    header was read."""
    table = found.table
    start = found.row + found.rows  # the first data row's number
    position = file.tell()
    file.seek(0)
    total = max(last_row(file, plan.filename, table.index) - start + 1, 0)
    file.seek(position)
    if total > plan.max_rows:
        raise TabularError(f"{plan.too_many} (the file has {total:,} rows)")
    if opened is not None:
        source: dict[str, Any] = {"header_row": found.row, "header_rows": found.rows}
        if table.sheet is not None:
            source["sheet"] = table.sheet
        if table.encoding is not None:
            source["encoding"] = table.encoding
        opened(Opening(found.names, total, source))
    rows = itertools.chain(found.first[start - 1 :], table.rows)
    chunk: list[Any] = []
    for number, row in enumerate(rows, start=start):
        if number >= start + plan.max_rows:
            raise TabularError(plan.too_many)
        if is_blank(row):
            continue
        parsed = parse(number, row)
        parsed.cells = row
        chunk.append(parsed)
        if len(chunk) >= plan.chunk_rows:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _stream(path: str, address: str, plan: ReadPlan) -> None:
    """In a worker: send the file's chunks to the import listening at ``address``, then close.
    A closed socket (the import gave up) ends it quietly; TabularError reaches the import
    through the pool's future."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.connect(address)

        def send(item: object) -> None:
            data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
            connection.sendall(_FRAME.pack(len(data)) + data)

        framed = replace(plan, chunk_rows=min(plan.chunk_rows, FRAME_ROWS))
        try:
            with open(path, "rb") as file:
                for frame in (plan.rows or parsed_chunks)(file, framed, send):
                    send(frame)
        except (BrokenPipeError, ConnectionResetError):
            return


def _worker_started(gc_young_threshold: int) -> None:
    """A reader's start: the collector tuned as the service's, and a thread that ends the
    reader when the service process is gone (a pool's idle worker would wait for work forever
    after its parent was killed)."""
    tune_garbage_collector(gc_young_threshold)
    end_with_parent()


_ACCEPT_GRACE = 10.0
"""Seconds an accepted connection may take to reach the import after its worker returned."""


class ImportReadFailed(RuntimeError):
    """The worker reading the file stopped without an answer (killed, out of memory, a bug)."""


class Readers:
    """The process pool of one service process, started on first use."""

    def __init__(self, workers: int, gc_young_threshold: int) -> None:
        self.workers, self.gc_young_threshold = workers, gc_young_threshold
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(self, path: str, address: str, plan: ReadPlan) -> Future[None]:
        """Read the file at ``path`` into the socket at ``address``; a pool broken by a worker
        that died is replaced."""
        return self._submit(_stream, path, address, plan)

    def warm(self) -> None:
        """Start a worker now: its interpreter loads while the import gets ready (the stored
        file restored, the transaction begun), not after."""
        self._submit(int)

    def _submit(self, work: Callable[..., Any], *args: Any) -> Future[Any]:
        with self._lock:
            if self._pool is not None:
                try:
                    return self._pool.submit(work, *args)
                except BrokenProcessPool:
                    self._pool.shutdown(wait=False)
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_started,
                initargs=(self.gc_young_threshold,),
            )
            return self._pool.submit(work, *args)

    def shutdown(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


_READERS: Readers | None = None
_READERS_LOCK = threading.Lock()


def readers(settings: Any) -> Readers:
    """The process's pool of readers (one per process, sized by the first import's settings:
    ``import_readers``, ``gc_young_threshold``)."""
    global _READERS
    with _READERS_LOCK:
        if _READERS is None:
            workers = int(getattr(settings, "import_readers", 1))
            _READERS = Readers(workers, settings.gc_young_threshold)
        return _READERS


class RowReader:
    """One import's rows from a worker: ``async with RowReader(readers, file, plan) as reader``
    copies the upload and starts reading; ``await reader.chunk()`` until it returns an empty
    list. Leaving the block closes the stream (a worker still reading stops) and removes the
    copy, however the import ended."""

    def __init__(self, readers: Readers, file: IO[bytes], plan: ReadPlan) -> None:
        self.readers, self.file, self.plan = readers, file, plan
        self.directory: str | None = None
        self.done: asyncio.Future[None] | None = None
        self.stream: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.opening: Opening | None = None
        """The header and row count, known once entered."""
        self.rest: list[ParsedRow] = []
        """Rows of the last frame beyond the chunk returned: the next chunk's first."""

    def _copy(self, directory: str) -> str:
        path = os.path.join(directory, "upload")
        self.file.seek(0)
        with open(path, "wb") as copy:
            shutil.copyfileobj(self.file, copy, 1 << 20)
        return path

    async def __aenter__(self) -> RowReader:
        try:
            await self._start()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def _start(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="clientele-import-")
        path = await asyncio.to_thread(self._copy, self.directory)
        address = os.path.join(self.directory, "rows.sock")
        connected: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]]
        connected = asyncio.get_running_loop().create_future()

        def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if not connected.done():
                connected.set_result((reader, writer))

        server = await asyncio.start_unix_server(accept, address, limit=1 << 20)
        try:
            self.done = asyncio.wrap_future(self.readers.submit(path, address, self.plan))
            either: list[asyncio.Future[Any]] = [connected, self.done]
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if not connected.done() and self.done.done() and self.done.exception() is None:
                # A worker returns only after connecting: a small file can be sent and the
                # worker's answer arrive before the accept callback has run. Wait for it.
                await asyncio.wait([connected], timeout=_ACCEPT_GRACE)
            if not connected.done():  # the worker failed before it connected
                connected.cancel()
                await self._outcome()
                raise ImportReadFailed("the import's reader ended without reading the file")
            self.stream, self.writer = connected.result()
        finally:
            server.close()
        opening = await self._frame()
        if not isinstance(opening, Opening):
            raise ImportReadFailed("the import's reader sent no header")
        self.opening = opening

    async def _frame(self) -> object:
        """The worker's next item (None at the end of the stream)."""
        assert self.stream is not None
        try:
            size = _FRAME.unpack(await self.stream.readexactly(_FRAME.size))[0]
            data = await self.stream.readexactly(size)
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                await self._outcome()
                raise ImportReadFailed("the import's reader stopped half-way") from None
            await self._outcome()
            return None
        # our own worker's pickle, over a socket in a directory only this user may enter
        return pickle.loads(data)  # noqa: S301

    async def chunk(self) -> list[ParsedRow]:
        """The next chunk of parsed rows, up to ``chunk_rows`` of them gathered from the worker's
        frames (empty at the end); TabularError from the worker."""
        rows, self.rest = self.rest, []
        while len(rows) < self.plan.chunk_rows:
            frame = await self._frame()
            if not isinstance(frame, list):
                break
            rows += frame
        rows, self.rest = rows[: self.plan.chunk_rows], rows[self.plan.chunk_rows :]
        return rows

    async def _outcome(self) -> None:
        """Wait for the worker's answer: TabularError, ImportReadFailed, or nothing."""
        assert self.done is not None
        try:
            await self.done
        except TabularError:
            raise
        except Exception as exc:
            raise ImportReadFailed(f"the import's reader failed: {exc!r}") from exc

    async def __aexit__(self, *_: object) -> None:
        if self.writer is not None:
            self.writer.close()  # a worker still sending gets a broken pipe and stops
        elif self.done is not None:
            self.done.cancel()  # still queued behind other imports: never started
        if self.done is not None:
            await asyncio.wait([self.done])
            if not self.done.cancelled():
                self.done.exception()  # retrieved: the import raised what mattered
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
