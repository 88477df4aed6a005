"""The directory service (issue 17, ADR 77): a company's first import, its client base moved into
a new, empty directory as its users do it: a dry run of the file, then the import of its valid
rows, end to end over HTTP.

The file is the directory-import figure's workbook (`bench.figures.directory_import`); the
database is made and migrated afresh for each run (`clientele_bench_directory_first`), so its
tables are as a new installation's. The dry run's rows are rolled back and vacuumed by its job
(ADR 73), which leaves the tables' pages with no live row: the committed import's look-ups are
planned over tables counted empty while they fill, unless the import counts them again.
"""

from __future__ import annotations

from typing import Any

from clientele_testkit.databases import drop_database

from bench.figures.directory import _migrate
from bench.figures.directory_import import _import, prepared
from bench.registry import Context, Metric, Target, before_metrics, figure
from bench.stack import ensure_database

DATABASE = "clientele_bench_directory_first"
MODES = {"dry_run": "dry run", "valid_rows": "import (valid rows), committed, after the dry run"}


def _metrics() -> list[Metric]:
    metrics = []
    for mode, label in MODES.items():
        metrics += [
            Metric(
                f"{mode}_s",
                f"{label}, end to end, empty directory",
                "s",
                target=Target("<", 60),
                higher_is_better=False,
            ),
            Metric(
                f"{mode}_peak_mb",
                f"peak VmHWM summed (service, job process, readers), {label}",
                "MB",
                target=Target("<", 500),
                higher_is_better=False,
            ),
            *before_metrics(mode, label),
        ]
    return metrics


@figure(
    "directory-import-first",
    "Directory: a first import of 100,000 organizations into an empty directory, dry run then"
    " committed",
    kind="figure",
    description=(
        "POST /v1/organizations/import of the directory-import figure's .xlsx of `rows`"
        " organizations as a sales user of one direction, into a directory database made and"
        " migrated afresh for the run (base 0 organizations, no statistics), by a fresh"
        " `clientele serve directory` process per import (relay and consumers off): the dry"
        " run, then the import of the valid rows (committed), each a job, from the first byte"
        " of the upload to the job's end (polled every 0.2 s); the service is stopped once the"
        " job's child process has exited (after the dry run it vacuums the tables the import"
        " inserted into, ADR 73). Peak memory as in directory-import. The figure a company"
        " moving its client base in sees. With `before` (BENCH_PARAMS=before=<path of another"
        " tree's services/directory/src>) the pair is also run by that code on its own fresh"
        " database, after this tree's, and `*_ratio` is this tree's time over that one's."
    ),
    metrics=_metrics(),
    params={"rows": 100_000, "existing": 10_000, "before": ""},
    quick_params={"rows": 10_000, "existing": 2_000, "before": ""},
    timeout=7200,
)
async def directory_import_first(ctx: Context) -> dict[str, float]:
    ready = await prepared(ctx)
    before = str(ctx.params["before"] or "")
    postgres, url = ctx.infra.postgres_url, ctx.infra.database_url(DATABASE)
    ctx.cleanup.push_async_callback(drop_database, postgres, DATABASE)
    result: dict[str, float] = {}
    for tag, src in [("", None), *([("before_", before)] if before else [])]:
        await drop_database(postgres, DATABASE)
        await ensure_database(postgres, DATABASE)
        await _migrate(ctx, url)
        counts: dict[str, dict[str, Any]] = {}
        for mode in MODES:
            seconds, peak, _, counts[mode] = await _import(ctx, url, ready, mode, src)
            result[f"{tag}{mode}_s"] = seconds
            if not tag:
                result[f"{mode}_peak_mb"] = peak
        if counts["valid_rows"] != counts["dry_run"]:
            ctx.notes.append(
                f"{tag or 'this tree'}: the import did {counts['valid_rows']},"
                f" its dry run said {counts['dry_run']}"
            )
    if before:
        for mode in MODES:
            result[f"{mode}_ratio"] = result[f"{mode}_s"] / result[f"before_{mode}_s"]
    return result
