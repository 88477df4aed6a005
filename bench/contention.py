"""Notices test runs (pytest processes) on the machine while a figure is measured."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

MARK = b"pytest"


def test_processes() -> set[int]:
    """Pids of processes whose command line mentions pytest."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if MARK in (entry / "cmdline").read_bytes():
                found.add(int(entry.name))
    return found


class Watch:
    """`async with Watch() as watch:` ... `watch.seen` tells whether tests ran meanwhile."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.seen: set[int] = set()
        self._task: asyncio.Task[None] | None = None

    async def _poll(self) -> None:
        while True:
            self.seen |= await asyncio.to_thread(test_processes)
            await asyncio.sleep(self.interval)

    async def __aenter__(self) -> Watch:
        self._task = asyncio.create_task(self._poll())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.seen |= await asyncio.to_thread(test_processes)


async def wait_for_quiet(limit: float, interval: float = 5.0) -> float:
    """Wait up to `limit` s until no tests run; return the seconds waited."""
    waited = 0.0
    while waited < limit:
        running: set[int] = await asyncio.to_thread(test_processes)
        if not running:
            break
        await asyncio.sleep(interval)
        waited += interval
    return waited
