"""Background tasks that are watched: a task that dies is logged, counted, shown and restarted."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from clientele_shared.failures import is_unavailable
from clientele_shared.observability import BACKGROUND_TASK_FAILURES, COMPONENT_UP, get_logger

log = get_logger(__name__)


@dataclass
class _TaskState:
    status: str = "starting"
    failures: int = 0
    """Failures in a row that were not an outage (an outage is waited out without counting)."""


class Supervisor:
    """Runs named coroutines until stopped, restarting one that fails (or returns) with back-off.

    Each failure is logged with its traceback and counted in
    `clientele_background_task_failures_total`; `clientele_component_up{component=<task>}` is 0
    while the task waits to be restarted. The back-off doubles from `initial_backoff` to
    `max_backoff` and starts over once a run lasted `healthy_after` seconds. A task that fails
    `give_up_after` times in a row for reasons other than an unavailable dependency is not
    restarted: `on_give_up` is called (the service runtime ends the process with a non-zero
    status, so that Kubernetes starts a fresh one).
    """

    def __init__(
        self,
        service: str,
        *,
        on_give_up: Callable[[str], None],
        initial_backoff: float = 1.0,
        max_backoff: float = 30.0,
        healthy_after: float = 60.0,
        give_up_after: int = 10,
    ) -> None:
        self.service = service
        self.on_give_up = on_give_up
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.healthy_after = healthy_after
        self.give_up_after = give_up_after
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._states: dict[str, _TaskState] = {}

    def start(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """Run `run()` under supervision as the task `name`."""
        if name in self._tasks:
            raise ValueError(f"a background task {name!r} runs already")
        self._states[name] = _TaskState()
        self._tasks[name] = asyncio.create_task(self._supervise(name, run), name=name)

    async def stop(self) -> None:
        """Cancel every task and wait for them."""
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def health(self) -> dict[str, str]:
        """Each task's status: 'running', or why and until when it is not."""
        return {name: state.status for name, state in self._states.items()}

    async def _supervise(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        state = self._states[name]
        up = COMPONENT_UP.labels(self.service, name)
        in_a_row = 0  # failures in a row of any kind, for the back-off
        while True:
            state.status = "running"
            up.set(1)
            started = time.monotonic()
            outage = False
            try:
                await run()
                error = "returned, though it should run until stopped"
                log.error("background task ended", task=name, error=error)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                outage = is_unavailable(exc)
                error = repr(exc)
                log.exception("background task failed", task=name, outage=outage)
            up.set(0)
            BACKGROUND_TASK_FAILURES.labels(self.service, name).inc()
            if time.monotonic() - started >= self.healthy_after:
                in_a_row = state.failures = 0
            in_a_row += 1
            state.failures += 0 if outage else 1
            if state.failures >= self.give_up_after:
                state.status = f"gave up after {state.failures} failures in a row: {error}"
                log.critical("background task gave up", task=name, failures=state.failures)
                self.on_give_up(name)
                return
            delay = min(self.max_backoff, self.initial_backoff * 2 ** (in_a_row - 1))
            state.status = f"restarting in {delay:g}s after failure {in_a_row} in a row: {error}"
            await asyncio.sleep(delay)
