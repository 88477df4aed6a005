"""A background job's work in a process of its own that ends with the job (ADR 62).

What a large job allocates (an import's validated rows, its statement caches, the heap glibc
keeps) goes back to the system when its process exits, not when the allocator decides: the
service process stays at its idle memory whatever the job did. The process is started with
``spawn`` (a fresh interpreter: never a fork of a process holding sockets, threads and an event
loop); it builds its own runtime through the service's composition root from the settings it is
given (pickled through the start pipe, never on the command line), runs ``work(runtime, *args)``
and exits. It writes what it does through its own database connections, as the service would;
it runs no relay (a commit's ``NOTIFY`` wakes the service's) and no consumers. SIGTERM cancels
the work (its transaction rolled back, its readers stopped); SIGINT is left to the service
(a terminal's Ctrl-C reaches the whole process group); and it exits by itself when the service
process is gone. Its temporary files go to a directory the service removes once it ended,
however it ended.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import shutil
import signal
import tempfile
from collections.abc import Awaitable, Callable
from multiprocessing.process import BaseProcess
from typing import Any

from clientele_shared.memory import tune_garbage_collector
from clientele_shared.observability import configure_logging
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.settings import ServiceSettings
from clientele_shared.worker_processes import end_with_parent

RuntimeFactory = Callable[[Any], ServiceRuntime]
"""The service's composition root: its runtime from its settings (a module-level function)."""
Work = Callable[..., Awaitable[None]]
"""``work(runtime, *args)``: the job's work in the child (a module-level coroutine function)."""

STOP_GRACE_SECONDS = 10.0
"""How long a child asked to stop (SIGTERM) may take before it is killed (SIGKILL)."""


class JobProcess:
    """One job's child process: ``await start()``, then ``await wait()`` for its exit code, or
    ``await stop()`` to end it sooner; ``close()`` removes its temporary directory."""

    def __init__(
        self,
        settings: ServiceSettings,
        make_runtime: RuntimeFactory,
        work: Work,
        *args: Any,
        name: str,
    ) -> None:
        self.workdir = tempfile.mkdtemp(prefix=f"clientele-{name}-")
        context = multiprocessing.get_context("spawn")
        # Not a daemon: a daemonic process may not start processes of its own (the readers).
        self.process: BaseProcess = context.Process(
            target=_main,
            args=(settings, make_runtime, work, args, self.workdir),
            name=name,
            daemon=False,
        )
        self._ended: asyncio.Future[int] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid

    async def start(self) -> None:
        """Start the child. The start writes the pickled arguments to the child's pipe, so it
        runs off the event loop; a caller cancelled meanwhile still waits for it to finish, so
        that ``stop()`` always finds the child it must end."""
        starting = asyncio.ensure_future(asyncio.to_thread(self.process.start))
        try:
            await asyncio.shield(starting)
        except asyncio.CancelledError:
            await asyncio.wait([starting])
            if not starting.cancelled() and starting.exception() is None:
                self._watch()
            raise
        self._watch()

    def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        self._ended = loop.create_future()
        loop.add_reader(self.process.sentinel, self._exited)

    def _exited(self) -> None:
        """The child's sentinel is readable: it has exited (joining only reaps it)."""
        asyncio.get_running_loop().remove_reader(self.process.sentinel)
        self.process.join()
        code = self.process.exitcode
        if self._ended is not None and code is not None and not self._ended.done():
            self._ended.set_result(code)

    async def wait(self) -> int:
        """The child's exit code once it exits (-N: ended by signal N); the loop is not blocked."""
        assert self._ended is not None, "not started"
        return await asyncio.shield(self._ended)

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM (the work is cancelled and rolled back), SIGKILL after ``grace`` seconds;
        returns once the child has exited."""
        if self._ended is None or self._ended.done():
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.wait(), grace)
        except TimeoutError:
            self.process.kill()
            await self.wait()

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def _main(
    settings: ServiceSettings,
    make_runtime: RuntimeFactory,
    work: Work,
    args: tuple[Any, ...],
    workdir: str,
) -> None:
    """The child's entry."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tempfile.tempdir = workdir
    end_with_parent()
    configure_logging(settings.service_name, settings.log_level, json=settings.log_json)
    try:
        asyncio.run(_run(settings, make_runtime, work, args))
    except asyncio.CancelledError:
        pass  # asked to stop: the service decides what becomes of the job
    finally:
        # The job's own helpers (an import's reader pool) have nothing left to do; a pool's
        # worker still starting would otherwise hold the exit for as long as its start takes.
        for helper in multiprocessing.active_children():
            helper.kill()


async def _run(
    settings: ServiceSettings, make_runtime: RuntimeFactory, work: Work, args: tuple[Any, ...]
) -> None:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    runtime = make_runtime(settings.model_copy(update={"run_relay": False, "run_consumers": False}))
    tune_garbage_collector(settings.gc_young_threshold)
    try:
        await work(runtime, *args)
    finally:
        await runtime.redis.aclose()
        await runtime.engine.dispose()
