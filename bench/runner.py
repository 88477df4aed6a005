"""Runs the selected figures `runs` times, interleaved, and collects their samples."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clientele_testkit.infra import Infrastructure

from bench.contention import Watch, wait_for_quiet
from bench.processes import Processes
from bench.registry import Context, Figure
from bench.stats import summary

PAUSE = 0.5
"""Seconds between two figure runs, for the broker and the database to settle."""


@dataclass
class Outcome:
    """One figure's samples over the runs."""

    figure: Figure
    params: dict[str, Any]
    samples: dict[str, list[float]] = field(default_factory=dict)
    lower_bounds: dict[str, list[bool]] = field(default_factory=dict)
    """Per metric and sample: whether the value is only a lower bound."""
    runs: list[int] = field(default_factory=list)
    """The runs that gave samples (in order)."""
    seconds: list[float] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    disturbed: list[int] = field(default_factory=list)
    """Runs during which tests (pytest) ran on the machine."""

    def median(self, metric: str) -> float | None:
        values = self.samples.get(metric)
        return summary(values)["median"] if values else None


def _say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


async def run_figures(
    figures: list[Figure],
    *,
    runs: int,
    quick: bool,
    infra: Infrastructure,
    database_url: str,
    repo: Path,
    logs: Path,
    wait_for_tests: float = 0.0,
) -> dict[str, Outcome]:
    outcomes = {fig.name: Outcome(fig, fig.parameters(quick)) for fig in figures}
    shared: dict[str, Any] = {}
    async with contextlib.AsyncExitStack() as cleanup:
        for run in range(1, runs + 1):
            for fig in figures:
                if wait_for_tests and (waited := await wait_for_quiet(wait_for_tests)):
                    _say(f"waited {waited:.0f}s for a test run to end")
                await _run_one(
                    outcomes[fig.name],
                    run,
                    runs,
                    Context(
                        infra,
                        database_url,
                        repo,
                        run,
                        quick,
                        outcomes[fig.name].params,
                        Processes(logs, f"run{run}-{fig.name}"),
                        shared,
                        cleanup,
                    ),
                )
                await asyncio.sleep(PAUSE)
    return outcomes


async def _run_one(outcome: Outcome, run: int, runs: int, ctx: Context) -> None:
    fig = outcome.figure
    started = time.perf_counter()
    async with Watch() as watch, ctx.processes:
        try:
            async with asyncio.timeout(fig.timeout):
                values = await fig.sampler(ctx)
        except Exception as exc:
            message = "".join(traceback.format_exception_only(exc)).strip()
            if isinstance(exc, TimeoutError) and not str(exc):
                message = f"TimeoutError: the run took more than {fig.timeout:g}s"
            outcome.errors.append({"run": run, "error": message[:3000]})
            values = None
    seconds = time.perf_counter() - started
    if watch.seen:
        outcome.disturbed.append(run)
    outcome.notes += [{"run": run, "note": note} for note in ctx.notes]
    disturbed = " [tests were running]" if watch.seen else ""
    if values is None:
        _say(f"run {run}/{runs} {fig.title}: FAILED after {seconds:.1f}s{disturbed}:")
        print(outcome.errors[-1]["error"], file=sys.stderr)
        return
    declared = {metric.key for metric in fig.metrics}
    if not set(values) <= declared:  # a subset: a run with fewer cases (BENCH_PARAMS)
        raise ValueError(f"{fig.name} returned {sorted(values)}, declares {sorted(declared)}")
    for key, value in values.items():
        outcome.samples.setdefault(key, []).append(float(value))
        outcome.lower_bounds.setdefault(key, []).append(key in ctx.lower_bounds)
    outcome.runs.append(run)
    outcome.seconds.append(seconds)
    shown = ", ".join(f"{key}={value:,.1f}" for key, value in values.items())
    _say(f"run {run}/{runs} {fig.title}: {shown} ({seconds:.1f}s){disturbed}")
    for note in ctx.notes:
        _say(f"  note: {note}")
