"""The import's rows come from a worker process: in order and in chunks, the worker's errors
reach the import, an import that gives up stops its worker, and a worker that dies fails the
import without breaking the next one."""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import os
import pickle
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest
from clientele_directory.imports.reader import (
    _FRAME,
    FRAME_ROWS,
    ImportReadFailed,
    Readers,
    ReadPlan,
    RowReader,
    _stream,
)
from clientele_directory.tabular import TabularError


def _plan(filename: str = "rows.csv", chunk_rows: int = 100, max_rows: int = 100_000) -> ReadPlan:
    return ReadPlan(
        filename=filename,
        overrides={},
        labels={},
        directions=["north"],
        max_rows=max_rows,
        too_many=f"more than {max_rows} rows",
        chunk_rows=chunk_rows,
    )


def _csv(rows: int) -> io.BytesIO:
    lines = ["Наименование;Телефон"] + [f"ООО «Ромашка {n}»;+7 495 {n:07d}" for n in range(rows)]
    return io.BytesIO("\n".join(lines).encode())


@pytest.fixture(scope="module")
def readers() -> Iterator[Readers]:
    pool = Readers(workers=1, gc_young_threshold=100_000)
    yield pool
    pool.shutdown()


@pytest.fixture(autouse=True)
def _own_temporary_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The import's copies go to a directory of this test's alone (other imports running on
    the machine come and go in the shared one)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


def _leftovers() -> set[str]:
    return {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("clientele-import-")}


async def test_rows_arrive_in_order_in_chunks_and_the_copy_is_removed(readers: Readers) -> None:
    before = _leftovers()
    chunks = []
    async with RowReader(readers, _csv(250), _plan(chunk_rows=100)) as reader:
        while chunk := await reader.chunk():
            chunks.append(chunk)
    assert [len(c) for c in chunks] == [100, 100, 50]
    numbers = [row.number for chunk in chunks for row in chunk]
    assert numbers == list(range(2, 252))
    first = chunks[0][0]
    assert first.draft is not None
    assert first.draft.legal_name == "ООО «Ромашка 0»"
    assert [p.number for p in first.draft.phones] == ["+74950000000"]
    assert _leftovers() == before


async def _read_all(readers: Readers, file: io.BytesIO, plan: ReadPlan) -> int:
    rows = 0
    async with RowReader(readers, file, plan) as reader:
        while chunk := await reader.chunk():
            rows += len(chunk)
    return rows


async def test_an_unreadable_file_is_the_workers_tabular_error(readers: Readers) -> None:
    with pytest.raises(TabularError, match="ZIP"):
        await _read_all(readers, io.BytesIO(b"not a workbook"), _plan("a.xlsx"))
    with pytest.raises(TabularError, match="more than 10 rows"):
        await _read_all(readers, _csv(50), _plan(chunk_rows=5, max_rows=10))


async def test_an_import_that_gives_up_stops_its_worker(readers: Readers) -> None:
    before = _leftovers()
    async with RowReader(readers, _csv(20_000), _plan(chunk_rows=10)) as reader:
        assert len(await reader.chunk()) == 10
    assert _leftovers() == before
    # the pool's only worker is free again: the next import is read to the end
    async with RowReader(readers, _csv(30), _plan()) as reader:
        assert len(await reader.chunk()) == 30
        assert await reader.chunk() == []


async def test_a_warmed_pool_has_its_worker_before_the_import_and_reads_with_it() -> None:
    """One reader, as a job's child has (IMPORT_READERS=1): warmed, it runs before any file is
    given and reads the import (a pool replaced on the way would show a second process)."""
    pool = Readers(workers=1, gc_young_threshold=100_000)
    others = {child.pid for child in multiprocessing.active_children()}

    def workers() -> set[int | None]:
        return {c.pid for c in multiprocessing.active_children() if c.pid not in others}

    try:
        pool.warm()
        started = workers()
        assert len(started) == 1  # started before any file was given
        assert await _read_all(pool, _csv(30), _plan()) == 30
        assert workers() == started  # the import was read by it, no second one started
    finally:
        pool.shutdown()


async def test_a_worker_that_dies_fails_its_import_and_the_next_gets_a_new_pool() -> None:
    pool = Readers(workers=1, gc_young_threshold=100_000)
    others = {child.pid for child in multiprocessing.active_children()}

    async def killed_half_way() -> None:
        async with RowReader(pool, _csv(20_000), _plan(chunk_rows=10)) as reader:
            await reader.chunk()
            for child in multiprocessing.active_children():
                if child.pid not in others:
                    os.kill(child.pid or 0, signal.SIGKILL)
            while await reader.chunk():
                pass

    try:
        with pytest.raises(ImportReadFailed):
            await killed_half_way()
        assert await _read_all(pool, _csv(3), _plan()) == 3
    finally:
        pool.shutdown()


_KILLED_SERVICE = """
import asyncio, io, multiprocessing, os, signal
from clientele_directory.imports.reader import Readers, ReadPlan, RowReader

async def main() -> None:
    plan = ReadPlan("rows.csv", {}, {}, ["north"], 100, "too many", 10)
    async with RowReader(Readers(1, 100_000), io.BytesIO(b"legal_name\\nA\\n"), plan) as reader:
        while await reader.chunk():
            pass
    print(*(child.pid for child in multiprocessing.active_children()), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_readers_end_when_the_service_process_is_killed() -> None:
    killed = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _KILLED_SERVICE, stdout=asyncio.subprocess.PIPE
    )
    assert killed.stdout is not None
    output = await asyncio.wait_for(killed.stdout.readline(), 60)
    assert await asyncio.wait_for(killed.wait(), 10) == -signal.SIGKILL
    workers = [int(pid) for pid in output.split()]
    assert workers
    for _ in range(100):
        if not any(_alive(pid) for pid in workers):
            break
        await asyncio.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)


class _FinishedBeforeAccepted(Readers):
    """Runs the worker's part in the calling thread: it connects, sends every chunk and returns
    before the event loop has run the import's accept callback (the race of a small file)."""

    def __init__(self) -> None:
        super().__init__(workers=1, gc_young_threshold=100_000)

    def submit(self, path: str, address: str, plan: ReadPlan) -> Future[None]:
        _stream(path, address, plan)
        finished: Future[None] = Future()
        finished.set_result(None)
        return finished


async def test_a_worker_that_answers_before_its_connection_is_accepted_is_read() -> None:
    async with RowReader(_FinishedBeforeAccepted(), _csv(3), _plan()) as reader:
        chunks = []
        while chunk := await reader.chunk():
            chunks.append(chunk)
    assert [row.number for chunk in chunks for row in chunk] == [2, 3, 4]


def test_the_worker_sends_small_frames_and_the_import_gets_whole_chunks(readers: Readers) -> None:
    """The worker parses and sends at most FRAME_ROWS rows at a time (its memory holds a frame,
    not a chunk); the import still gets chunks of ``chunk_rows`` (ADR 66)."""
    rows, chunk_rows = 2 * FRAME_ROWS + 60, FRAME_ROWS + 100
    with tempfile.TemporaryDirectory() as directory:
        path, address = os.path.join(directory, "rows.csv"), os.path.join(directory, "rows.sock")
        with open(path, "wb") as copy:
            copy.write(_csv(rows).getvalue())
        frames: list[list[object]] = []
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(address)
            server.listen(1)
            worker = readers.submit(path, address, _plan(chunk_rows=chunk_rows))
            connection, _ = server.accept()
            with connection, connection.makefile("rb") as stream:
                while header := stream.read(_FRAME.size):
                    item = pickle.loads(stream.read(_FRAME.unpack(header)[0]))  # noqa: S301
                    if isinstance(item, list):
                        frames.append(item)
            worker.result(timeout=60)
    assert [len(frame) for frame in frames] == [FRAME_ROWS, FRAME_ROWS, 60]

    async def chunks() -> list[int]:
        sizes = []
        async with RowReader(readers, _csv(rows), _plan(chunk_rows=chunk_rows)) as reader:
            while chunk := await reader.chunk():
                sizes.append(len(chunk))
        return sizes

    assert asyncio.run(chunks()) == [chunk_rows, rows - chunk_rows]
