"""The report of a bench run: JSON (every sample) and Markdown (for people)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from bench.runner import Outcome
from bench.stats import summary


def short_name(title: str) -> str:
    """'Figure 1: sustained ...' -> 'Figure 1'."""
    return title.split(":", 1)[0]


def build(outcomes: dict[str, Outcome], header: dict[str, Any]) -> dict[str, Any]:
    figures = []
    for outcome in outcomes.values():
        fig = outcome.figure
        metrics = []
        for metric in fig.metrics:
            samples = outcome.samples.get(metric.key, [])
            stats = summary(samples)
            entry: dict[str, Any] = {
                "key": metric.key,
                "label": metric.label,
                "unit": metric.unit,
                "samples": samples,
                "lower_bound": outcome.lower_bounds.get(metric.key, []),
                **stats,
                "target": (
                    {"op": metric.target.op, "value": metric.target.value}
                    if metric.target
                    else None
                ),
                "met": metric.target.met(stats["median"]) if metric.target and stats else None,
                "baseline": None,
            }
            if metric.baseline:
                name, key = metric.baseline.split(".", 1)
                base = outcomes.get(name)
                base_median = base.median(key) if base else None
                entry["baseline"] = {
                    "figure": name,
                    "title": base.figure.title if base else name,
                    "metric": key,
                    "median": base_median,
                    "ratio": stats["median"] / base_median if stats and base_median else None,
                }
            metrics.append(entry)
        figures.append(
            {
                "name": fig.name,
                "title": fig.title,
                "kind": fig.kind,
                "description": fig.description,
                "params": outcome.params,
                "runs": outcome.runs,
                "run_seconds": outcome.seconds,
                "tests_running_in_runs": outcome.disturbed,
                "notes": outcome.notes,
                "errors": outcome.errors,
                "metrics": metrics,
            }
        )
    return {**header, "figures": figures}


def number(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 100:
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio(value: float) -> str:
    return f"{number(value) if value >= 10 else f'{value:.3g}'}×"


SYMBOLS = {">=": "≥", "<=": "≤", ">": ">", "<": "<"}


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def markdown(data: dict[str, Any]) -> str:
    machine = data["machine"]
    out = [
        f"# Clientele benchmarks: {data['date']}",
        "",
        f"`{data['command']}`, {data['mode']} mode: {data['runs']}"
        f" run{'s' if data['runs'] != 1 else ''} of each figure,"
        f" interleaved (run 1 of every figure, then run 2, ...). Started {data['started_at']},"
        f" took {_duration(data['duration_s'])}. Commit {machine['git']}.",
        "",
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
        f"| CPU | {machine['cpu_model']}, nproc {machine['nproc']} |",
        f"| Memory | {machine['memory_gib']} GiB |",
        f"| OS | {machine['kernel']} |",
        f"| Python | {machine['python']} |",
        f"| Kafka | {machine['kafka']} (KRaft, one broker on loopback) |",
        f"| PostgreSQL | {machine['postgresql']} (loopback) |",
        "| Libraries | "
        + ", ".join(f"{name} {version}" for name, version in machine["packages"].items())
        + " |",
        "",
        "Everything (broker, database, the processes measured and the bench itself) shares"
        " these cores.",
        "",
        "## Summary",
        "",
        "Median over the runs; spread = min – max over the runs; ratio = this median / the"
        " baseline's median (both measured in this bench run). A target is met when the median"
        " meets it.",
        "",
        "| Figure | Metric | Median | Spread (min – max) | Ratio to baseline | Target | Met |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    bounded = False
    for fig in data["figures"]:
        for index, metric in enumerate(fig["metrics"]):
            unit = metric["unit"]
            bounds = metric.get("lower_bound") or [False] * len(metric["samples"])
            at_least = "≥ " if any(bounds) else ""
            bounded = bounded or bool(at_least)
            if metric["samples"]:
                median = f"{at_least}{number(metric['median'])} {unit}"
                spread = f"{number(metric['min'])} – {number(metric['max'])}"
            else:
                median, spread = "failed", ""
            base = metric["baseline"]
            versus = ""
            if base and base["ratio"] is not None:
                versus = (
                    f"{ratio(base['ratio'])} {short_name(base['title'])}"
                    f" ({number(base['median'])} {unit})"
                )
            target = ""
            if metric["target"]:
                goal = metric["target"]
                target = f"{SYMBOLS[goal['op']]} {goal['value']:,g} {unit}"
            met = {True: "**yes**", False: "**no**", None: ""}[metric["met"]]
            out.append(
                f"| {'' if index else fig['title']} | {metric['label']} | {median} | {spread}"
                f" | {versus}"
                f" | {target} | {met} |"
            )
    if bounded:
        out += [
            "",
            "≥: in some runs the value is only a lower bound (see the notes below).",
        ]
    disturbed = sorted({run for fig in data["figures"] for run in fig["tests_running_in_runs"]})
    if disturbed:
        out += [
            "",
            "Tests (pytest) ran on the machine during some measurements (runs marked * below,"
            f" in run{'s' if len(disturbed) > 1 else ''} {', '.join(map(str, disturbed))});"
            " those samples are kept but may be worse.",
        ]
    noted = [fig["title"] for fig in data["figures"] if fig["notes"]]
    if noted:
        out += ["", "See the notes below for: " + "; ".join(noted) + "."]
    failures = [(fig, error) for fig in data["figures"] for error in fig["errors"]]
    if failures:
        out += ["", "**Failed runs** (not in the figures; details below):", ""]
        out += [f"- {fig['title']}, run {error['run']}" for fig, error in failures]
    out += ["", "## How each figure is measured", ""]
    for fig in data["figures"]:
        params = ", ".join(
            f"{key} = {value:,}" if isinstance(value, int) else f"{key} = {value}"
            for key, value in fig["params"].items()
        )
        out += [f"### {fig['title']}", "", fig["description"], ""]
        if params:
            out += [f"Parameters: {params}.", ""]
        if fig["runs"]:
            marked = set(fig["tests_running_in_runs"])
            heads = [f"run {run}{'*' if run in marked else ''}" for run in fig["runs"]]
            out += ["| Metric | " + " | ".join(heads) + " |", "| --- |" + " --- |" * len(heads)]
            for metric in fig["metrics"]:
                cells = " | ".join(
                    f"{'≥ ' if bound else ''}{number(value)}"
                    for value, bound in zip(
                        metric["samples"],
                        metric.get("lower_bound") or [False] * len(metric["samples"]),
                        strict=True,
                    )
                )
                out.append(f"| {metric['label']} ({metric['unit']}) | {cells} |")
            seconds = " / ".join(f"{value:.1f}" for value in fig["run_seconds"])
            out += ["", f"Wall time per run (s, setup and clean-up included): {seconds}.", ""]
        if fig["notes"]:
            out += [f"- Run {note['run']}: {note['note']}" for note in fig["notes"]] + [""]
        for error in fig["errors"]:
            text = error["error"].replace("\n", "\n    ")
            out += [f"Run {error['run']} failed:", "", f"    {text}", ""]
    return "\n".join(out).rstrip() + "\n"


def write(data: dict[str, Any], directory: Path, stem: str) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix, text in (
        (".json", json.dumps(data, indent=2, ensure_ascii=False) + "\n"),
        (".md", markdown(data)),
    ):
        path = directory / f"{stem}{suffix}"
        partial = path.with_name(path.name + ".tmp")
        partial.write_text(text)
        partial.replace(path)
        written.append(path)
    return written
