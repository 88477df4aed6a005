"""Subprocesses of a bench run: started with their output logged, stopped on any exit."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import signal
import time
from pathlib import Path
from types import TracebackType

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: be killed when the bench process dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class ProcessFailedError(RuntimeError):
    pass


class Proc:
    """One subprocess; its stdout lines are kept (with the time each arrived) and logged."""

    def __init__(self, name: str, process: asyncio.subprocess.Process, log: Path) -> None:
        self.name = name
        self.process = process
        self.log = log
        self.url = ""
        """Where it serves, for a server."""
        self.finished = False
        """Its exit was awaited (`wait_exit`): a one-shot process, not a failure when it ends."""
        self.lines: list[tuple[float, str]] = []
        self._changed = asyncio.Event()
        self._eof = False
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        try:
            with self.log.open("ab") as out:
                async for raw in self.process.stdout:
                    self.lines.append((time.time(), raw.decode(errors="replace").strip()))
                    out.write(raw)
                    out.flush()
                    self._changed.set()
        finally:
            self._eof = True
            self._changed.set()

    def tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def check(self) -> None:
        """Raise if the process has exited, unless its exit was awaited with `wait_exit`."""
        if self.process.returncode is not None and not self.finished:
            raise ProcessFailedError(
                f"{self.name} exited with {self.process.returncode}; log {self.log}:\n{self.tail()}"
            )

    async def wait_line(self, text: str, *, within: float) -> float:
        """Wait for a stdout line equal to `text`; return the wall-clock time it arrived."""
        try:
            async with asyncio.timeout(within):
                while True:
                    self._changed.clear()
                    for at, line in self.lines:
                        if line == text:
                            return at
                    if self._eof:
                        await self.process.wait()
                        self.check()
                        raise ProcessFailedError(f"{self.name} closed its output")
                    await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(
                f"{self.name} did not print {text!r} within {within}s; log {self.log}:\n"
                f"{self.tail()}"
            ) from None

    async def wait_exit(self, *, within: float) -> int:
        try:
            async with asyncio.timeout(within):
                code = await self.process.wait()
                await self._reader
                self.finished = True
        except TimeoutError:
            raise TimeoutError(f"{self.name} did not exit within {within}s") from None
        return code

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                async with asyncio.timeout(5):
                    await self.process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


class Processes:
    """The subprocesses of one figure run; `async with` stops them all on exit."""

    def __init__(self, logs: Path, prefix: str) -> None:
        self.logs = logs
        self.prefix = prefix
        self.running: list[Proc] = []

    async def start(
        self, name: str, argv: list[str], *, env: dict[str, str], cwd: Path | None = None
    ) -> Proc:
        log = self.logs / f"{self.prefix}-{len(self.running)}-{name}.log"
        with log.open("ab") as stderr:  # appends: stdout lines are written beside it
            process = await asyncio.create_subprocess_exec(
                *argv,
                env=env,
                cwd=cwd,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                preexec_fn=_die_with_parent,
            )
        proc = Proc(name, process, log)
        self.running.append(proc)
        return proc

    def check(self) -> None:
        """Raise if a process exited that should still run (see `Proc.check`)."""
        for proc in self.running:
            proc.check()

    async def stop_all(self) -> None:
        # shielded: a cancelled run (Ctrl-C, SIGTERM, timeout) still stops what it started
        await asyncio.shield(asyncio.gather(*(proc.stop() for proc in self.running)))

    async def __aenter__(self) -> Processes:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop_all()
