"""`python -m bench`: measure the figures on the real stack; write bench/results/<date>.md, .json.

Environment:
  BENCH_RUNS            runs of each figure (default 5)
  BENCH_QUICK=1         2 short runs; the report is then <date>-quick
  BENCH_WAIT_FOR_TESTS  before each figure run, wait up to this many seconds while pytest runs on
                        the machine (default 0); runs measured while tests ran are marked anyway
  BENCH_PARAMS          name=value,... overriding the parameters of the figures that have them
                        (e.g. BENCH_PARAMS=rate=300,seconds=20)
Kafka, PostgreSQL and Redis come from KAFKA_BOOTSTRAP_SERVERS, POSTGRES_URL and REDIS_URL when
set, else deploy/local/infra.sh starts (or finds) them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from clientele_testkit.infra import infrastructure

from bench import figures, machine, report
from bench.registry import FIGURES
from bench.runner import run_figures
from bench.stack import BENCH_DATABASE, ensure_database

REPO = Path(__file__).resolve().parent.parent
ENV = ["BENCH_QUICK", "BENCH_RUNS", "BENCH_WAIT_FOR_TESTS", "BENCH_PARAMS"]
RESULTS = REPO / "bench" / "results"


LOCK = Path(tempfile.gettempdir()) / "clientele-bench.lock"


@contextlib.contextmanager
def alone(wait: float = 900) -> Iterator[None]:
    """One bench at a time on this machine: wait up to `wait` s for another one to end."""
    with LOCK.open("a") as handle:
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"bench: another bench still runs after {wait:g}s") from None
                if not told:
                    print("bench: another bench runs on this machine; waiting", file=sys.stderr)
                    told = True
                time.sleep(2)
        yield


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="as BENCH_QUICK=1")
    parser.add_argument("--runs", type=int, help="runs of each figure (as BENCH_RUNS)")
    parser.add_argument(
        "--only", action="append", metavar="NAME", help="run only these figures (repeatable)"
    )
    parser.add_argument("--list", action="store_true", help="list the figures and exit")
    parser.add_argument(
        "--render", type=Path, metavar="JSON", help="rewrite the .md of a results .json and exit"
    )
    return parser.parse_args(argv)


async def bench(args: argparse.Namespace, argv: list[str]) -> int:
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)

    quick = args.quick or _flag("BENCH_QUICK")
    runs = args.runs or int(os.environ.get("BENCH_RUNS") or (2 if quick else 5))
    selected = [fig for fig in FIGURES.values() if not args.only or fig.name in args.only]
    command = " ".join(
        [f"{name}={os.environ[name]}" for name in ENV if os.environ.get(name)]
        + ["python -m bench"]
        + (argv or [])
    )

    started_at, clock = datetime.now(UTC), time.perf_counter()
    stem = started_at.date().isoformat() + ("-quick" if quick else "")
    stem += "-partial" if args.only else ""
    logs = Path(tempfile.mkdtemp(prefix="clientele-bench-"))
    with infrastructure(REPO) as infra:
        await ensure_database(infra.postgres_url)
        database_url = infra.database_url(BENCH_DATABASE)
        described = await machine.describe(REPO, database_url)
        print(
            f"bench: {len(selected)} figures × {runs} runs ({'quick' if quick else 'default'});"
            f" logs in {logs}",
            file=sys.stderr,
        )
        outcomes = await run_figures(
            selected,
            runs=runs,
            quick=quick,
            infra=infra,
            database_url=database_url,
            repo=REPO,
            logs=logs,
            wait_for_tests=float(os.environ.get("BENCH_WAIT_FOR_TESTS") or 0),
        )
    header = {
        "date": started_at.date().isoformat(),
        "started_at": started_at.strftime("%Y-%m-%d %H:%M UTC"),
        "duration_s": round(time.perf_counter() - clock, 1),
        "mode": "quick" if quick else "default",
        "runs": runs,
        "command": command,
        "machine": described,
    }
    data = report.build(outcomes, header)
    for path in report.write(data, RESULTS, stem):
        print(f"bench: wrote {path.relative_to(REPO)}", file=sys.stderr)
    failed = sum(len(outcome.errors) for outcome in outcomes.values())
    if failed:
        print(f"bench: {failed} runs failed; process logs kept in {logs}", file=sys.stderr)
        return 1
    shutil.rmtree(logs, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    figures.load()
    if args.render:
        data = json.loads(args.render.read_text())
        args.render.with_suffix(".md").write_text(report.markdown(data))
        return 0
    if args.list:
        for fig in FIGURES.values():
            print(f"{fig.name:22} {fig.title}")
        return 0
    unknown = set(args.only or ()) - set(FIGURES)
    if unknown:
        print(f"unknown figures: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    try:
        with alone():
            return asyncio.run(bench(args, sys.argv[1:] if argv is None else argv))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("bench: interrupted; no report written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
