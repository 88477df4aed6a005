"""The figures the bench measures: each registers a function that returns one run's samples.

A figure function takes a `Context` and returns `{metric key: value}` for one run; the runner
calls it `runs` times (interleaved with the other figures), then reports each metric's median and
spread, its ratio to the baseline metric it names, and whether the median met its target.
"""

from __future__ import annotations

import contextlib
import operator
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from clientele_testkit.infra import Infrastructure

from bench.processes import Processes

Kind = Literal["baseline", "figure"]

_COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


@dataclass(frozen=True)
class Target:
    """A goal the median should meet, e.g. Target(">=", 2000)."""

    op: Literal["<", "<=", ">", ">="]
    value: float

    def met(self, median: float) -> bool:
        return bool(_COMPARE[self.op](median, self.value))

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    target: Target | None = None
    baseline: str | None = None
    """`<figure name>.<metric key>` of the baseline this metric is compared with."""
    higher_is_better: bool = True


def before_metrics(key: str, label: str) -> list[Metric]:
    """The seconds of ``key`` by the code of another tree (BENCH_PARAMS=before=<its
    services/.../src>, when given) and this tree's time over that one's."""
    return [
        Metric(
            f"before_{key}_s",
            f"{label}, end to end, the `before` tree's code (when given)",
            "s",
            higher_is_better=False,
        ),
        Metric(
            f"{key}_ratio",
            f"{label}: this tree's time / the `before` tree's",
            "×",
            higher_is_better=False,
        ),
    ]


@dataclass
class Context:
    """What a figure function gets for one run."""

    infra: Infrastructure
    database_url: str
    """The bench's own database (clientele_bench)."""
    repo: Path
    run: int
    quick: bool
    params: Mapping[str, Any]
    processes: Processes
    """Subprocesses started here are stopped when the run ends, however it ends."""
    shared: dict[str, Any]
    """Kept across runs and figures (e.g. data prepared once for every run)."""
    cleanup: contextlib.AsyncExitStack
    """Closed when the whole bench ends: undo here what `shared` holds."""
    notes: list[str] = field(default_factory=list)
    """Remarks on this run for the report (e.g. a cap was reached)."""
    lower_bounds: set[str] = field(default_factory=set)
    """Metrics whose value in this run is only a lower bound (reported as "≥ value")."""


Sampler = Callable[[Context], Awaitable[dict[str, float]]]


@dataclass(frozen=True)
class Figure:
    name: str
    title: str
    kind: Kind
    description: str
    metrics: tuple[Metric, ...]
    sampler: Sampler
    params: Mapping[str, Any] = field(default_factory=dict)
    quick_params: Mapping[str, Any] = field(default_factory=dict)
    timeout: float = 180.0
    """Seconds one run may take before it is abandoned (and reported as an error)."""

    def parameters(self, quick: bool) -> dict[str, Any]:
        """The run's parameters: the figure's, its quick ones in quick mode, then those of
        ``BENCH_PARAMS`` (``name=value,...``) the figure has, as the type of its own value."""
        chosen = {**self.params, **(self.quick_params if quick else {})}
        for item in filter(None, os.environ.get("BENCH_PARAMS", "").split(",")):
            name, _, value = item.partition("=")
            if name.strip() in chosen:
                chosen[name.strip()] = type(chosen[name.strip()])(value.strip())
        return chosen


FIGURES: dict[str, Figure] = {}


def figure(
    name: str,
    title: str,
    *,
    kind: Kind,
    description: str,
    metrics: list[Metric],
    params: Mapping[str, Any] | None = None,
    quick_params: Mapping[str, Any] | None = None,
    timeout: float = 180.0,
) -> Callable[[Sampler], Sampler]:
    """Register a figure; runs in registration order (baselines next to what uses them)."""

    def register(sampler: Sampler) -> Sampler:
        if name in FIGURES:
            raise ValueError(f"figure {name!r} registered twice")
        FIGURES[name] = Figure(
            name,
            title,
            kind,
            description,
            tuple(metrics),
            sampler,
            dict(params or {}),
            dict(quick_params or {}),
            timeout,
        )
        return sampler

    return register
