"""The process side of import jobs (ADR 41): claiming jobs, the lease and its heartbeat, and the
run of one job.

Every directory process runs a :class:`JobRunner` (a supervised background task). It claims the
oldest job no live process holds — a queued one, or a running one whose lease ran out because
its process died — up to ``IMPORT_JOBS_PER_PROCESS`` at a time, and renews the lease of each
job it runs every third of ``IMPORT_JOB_LEASE_SECONDS``. An import is one transaction, so a
process that dies leaves nothing of it written: the next process to claim the job runs it again
from the stored file (``IMPORT_JOB_MAX_ATTEMPTS`` runs at most, then it fails). A writing
import's job is marked succeeded in the import's own transaction, and only while its process
still holds the lease: a job is never committed twice. The same sweep removes the jobs that
finished more than ``IMPORT_JOBS_KEPT_DAYS`` ago (ADR 58).

A job's work — reading the stored file, the rows' validation, matching and writing, the report
and the job's outcome — runs in a child process that ends with the job (ADR 62,
``clientele_shared.job_processes``): :func:`run_job` there, the runner here. Whatever an import
allocated goes back to the system when its child exits. The runner keeps the lease, reads the
cancel flag and stops the child on a cancel, a lost lease or its own shutdown; a child that
died gives its job back to the sweep, as a process that died does.
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import time
import uuid
from types import SimpleNamespace
from typing import IO, Any

from clientele_shared.auth.principal import Principal
from clientele_shared.bulk import Copy
from clientele_shared.events.envelope import Actor
from clientele_shared.http.problems import PROBLEM_BASE
from clientele_shared.job_processes import JobProcess, RuntimeFactory
from clientele_shared.observability import get_logger
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import append_audit
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.imports import queries
from clientele_directory.imports.reader import ImportReadFailed, Opening, PersonsFile, readers
from clientele_directory.imports.rules import (
    ImportCounts,
    ImportKind,
    ImportMode,
    ImportReport,
    JobState,
    ParsedRow,
    RowReport,
    counts_of,
    rejected_counts,
)
from clientele_directory.imports.service import ImportRejected, run_import
from clientele_directory.person_imports.service import run_persons_import
from clientele_directory.tables import (
    audit_log,
    employments,
    import_job_lines,
    organization_names,
    organizations,
    persons,
    search_words,
)
from clientele_directory.tabular import TabularError

log = get_logger(__name__)


def _problem(status: int, title: str, detail: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": PROBLEM_BASE + kind,
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }


PRUNER = Actor(subject="directory", kind="service")
"""Who the audit names for the removal of old jobs."""
PRUNE_STEPS = 20
"""Transactions one sweep spends on removing old jobs, at most."""


class _LeaseLost(Exception):
    """Another process holds the job now (this one was too slow to renew its lease)."""


class JobRunner:
    """Claims and runs this process's import jobs."""

    def __init__(self, runtime: ServiceRuntime, make_runtime: RuntimeFactory) -> None:
        """``make_runtime``: the composition root, which builds a job's child its runtime."""
        settings = runtime.settings
        self.runtime, self.make_runtime = runtime, make_runtime
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease = float(getattr(settings, "import_job_lease_seconds", 60.0))
        self.sweep = float(getattr(settings, "import_job_sweep_seconds", 15.0))
        self.capacity = int(getattr(settings, "import_jobs_per_process", 2))
        self.max_attempts = int(getattr(settings, "import_job_max_attempts", 3))
        self.kept_days = float(getattr(settings, "import_jobs_kept_days", 30.0))
        self.prune_rows = int(getattr(settings, "import_job_prune_rows", 5000))
        self.running: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look for jobs now (a job was queued)."""
        self._wake.set()

    async def run(self) -> None:
        """Claim jobs while there is room, then wait for a wake-up or the next sweep."""
        try:
            while True:
                while len(self.running) < self.capacity and await self._claim_one():
                    pass
                try:
                    await asyncio.wait_for(self._wake.wait(), self.sweep)
                except TimeoutError:
                    await self._prune_quietly()
                self._wake.clear()
        finally:
            for task in self.running.values():
                task.cancel()
            if self.running:
                await asyncio.wait(list(self.running.values()))

    async def _claim_one(self) -> bool:
        async with self.runtime.sessions() as session, session.begin():
            job = await queries.claim(session, self.owner, self.lease)
            if job is None:
                return False
            if job.cancel_requested:
                await queries.finish_job(session, job.id, self.owner, state=JobState.CANCELLED)
                return True
            if job.attempts > self.max_attempts:
                await queries.finish_job(
                    session,
                    job.id,
                    self.owner,
                    state=JobState.FAILED,
                    problem=_problem(
                        500,
                        "Import Interrupted",
                        f"The import stopped {self.max_attempts} times before it ended "
                        "(its process died); nothing of it was written.",
                        "import-interrupted",
                    ),
                )
                return True
        log.info("import job claimed", job=str(job.id), attempt=job.attempts)
        task = asyncio.create_task(self._execute(job), name=f"import-{job.id}")
        self.running[job.id] = task
        task.add_done_callback(lambda _: self._done(job.id))
        return True

    # --- old jobs (ADR 58) ----------------------------------------------------------------------

    async def prune(self) -> int:
        """Remove the jobs that finished more than the kept days ago, with their report lines
        and what is left of their file: a transaction deletes at most ``prune_rows`` lines, a
        sweep runs at most PRUNE_STEPS of them (a large report takes several sweeps). Each job
        is locked while it is removed and skipped by another process's sweep; each removal is
        audited. How many jobs were removed."""
        removed: list[str] = []
        for _ in range(PRUNE_STEPS):
            async with self.runtime.sessions() as session, session.begin():
                job = await queries.old_job(session, self.kept_days * 86_400)
                if job is None:
                    break
                if await queries.prune_lines(session, job.id, self.prune_rows) >= self.prune_rows:
                    continue  # more lines left: the next transaction goes on
                await queries.delete_job(session, job.id)
                await append_audit(
                    session,
                    audit_log,
                    PRUNER,
                    kind="import_job",
                    action="removed",
                    entries=[
                        (
                            job.id,
                            None,
                            {
                                "state": job.state,
                                "filename": job.filename,
                                "created_by": job.created_by,
                                "finished_at": job.finished_at.isoformat(),
                            },
                        )
                    ],
                    note=f"finished more than {self.kept_days:g} days ago",
                )
                removed.append(str(job.id))
        if removed:
            log.info("old import jobs removed", jobs=removed, kept_days=self.kept_days)
        return len(removed)

    async def _prune_quietly(self) -> None:
        """A sweep's removal of old jobs; a failure is logged and tried again at the next."""
        try:
            await self.prune()
        except Exception:
            log.exception("old import jobs not removed")

    def _done(self, job_id: uuid.UUID) -> None:
        self.running.pop(job_id, None)
        self._wake.set()

    # --- one job: its child process ---------------------------------------------------------

    async def _execute(self, job: Any) -> None:
        """Run the job in a child process beside its heartbeat, and settle what the child left."""
        child = JobProcess(
            self.runtime.settings,
            self.make_runtime,
            run_job,
            self.owner,
            dict(job._mapping),
            name=f"import-{job.id}",
        )
        try:
            why, code = await self._supervised(job.id, child)
        except asyncio.CancelledError:  # this process stops: another one resumes the job
            await asyncio.shield(self._give_back(job.id, child))
            raise
        except Exception:
            log.exception("import job not run", job=str(job.id))
            await asyncio.shield(self._give_back(job.id, child))
            return
        finally:
            child.close()
        if why == "cancel":
            await self._finish(job.id, state=JobState.CANCELLED)  # unless the child ended it
        elif why == "lease":
            log.warning("import job taken over by another process", job=str(job.id))
        else:
            if code != 0:
                log.warning("import job's process died", job=str(job.id), exit_code=code)
            await self._release(job.id)  # unfinished (the child died): the next sweep resumes it

    async def _supervised(self, job_id: uuid.UUID, child: JobProcess) -> tuple[str | None, int]:
        """Start the child, note its pid on the job and wait for its end while the heartbeat
        renews the lease; why it was stopped (``cancel``, ``lease`` or None) and its exit code."""
        stop: dict[str, str] = {}
        await child.start()
        async with self.runtime.sessions() as session, session.begin():
            await queries.set_job(session, job_id, self.owner, worker_pid=child.pid)
        beat = asyncio.create_task(self._heartbeat(job_id, child, stop))
        try:
            code = await child.wait()
        finally:
            beat.cancel()
            await asyncio.wait([beat])
        return stop.get("why"), code

    async def _heartbeat(self, job_id: uuid.UUID, child: JobProcess, stop: dict[str, str]) -> None:
        ended = False
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                async with self.runtime.sessions() as session, session.begin():
                    lease = await queries.renew(session, job_id, self.owner, self.lease)
            except Exception:  # a database blip: the next beat tries again within the lease
                log.warning("import job's lease not renewed", job=str(job_id))
                continue
            if lease == "ended" and not ended:  # the child finished the job and is exiting
                ended = True
                continue
            if lease != "kept":  # a child still running a beat after its job ended is stale
                stop["why"] = "cancel" if lease == "cancel" else "lease"
                await child.stop()
                return

    async def _give_back(self, job_id: uuid.UUID, child: JobProcess) -> None:
        await child.stop()
        await self._release(job_id)

    async def _finish(self, job_id: uuid.UUID, **values: Any) -> None:
        async with self.runtime.sessions() as session, session.begin():
            await queries.finish_job(session, job_id, self.owner, **values)

    async def _release(self, job_id: uuid.UUID) -> None:
        """Give the job back (this process stops, or its child died): the next sweep of any
        process resumes it; a job the child ended has no owner left to match."""
        try:
            async with self.runtime.sessions() as session, session.begin():
                await queries.set_job(session, job_id, self.owner, owner=None, lease_until=None)
        except Exception:  # the lease then runs out instead
            log.warning("import job not released", job=str(job_id))


# --- in the job's child process ------------------------------------------------------------------


async def run_job(runtime: ServiceRuntime, owner: str, job: dict[str, Any]) -> None:
    """A job's work in its child process (ADR 62): the stored file restored, the import run,
    its progress and outcome written as ``owner``, the runner holding the job's lease."""
    await _Run(runtime, owner).execute(SimpleNamespace(**job))


WRITTEN: dict[ImportKind, list[Table]] = {
    ImportKind.ORGANIZATION: [organizations, organization_names, search_words],
    ImportKind.PERSON: [persons, employments, search_words],
}
"""The tables an import of each kind inserts into, vacuumed after a discarded run (ADR 73)."""


class _Run:
    """One run of a job, in its child process."""

    def __init__(self, runtime: ServiceRuntime, owner: str) -> None:
        settings = runtime.settings
        self.runtime, self.owner = runtime, owner
        self.max_rows = int(getattr(settings, "import_max_rows", 200_000))
        self.vacuum_rows = int(getattr(settings, "import_vacuum_rows", 10_000))
        self.lease = float(getattr(settings, "import_job_lease_seconds", 60.0))
        self.report: ImportReport | None = None
        self.committed = False

    async def execute(self, job: Any) -> None:
        await self._run(job)
        await self._tidy(ImportKind(job.kind))

    async def _run(self, job: Any) -> None:
        try:
            readers(self.runtime.settings).warm()  # its reader starts while the file is restored
            with tempfile.TemporaryFile(prefix="clientele-import-") as file:
                await self._restore(job.id, file)
                await self._import(job, file)
        except Exception:
            log.exception("import job failed", job=str(job.id))
            await self._finish(
                job.id,
                state=JobState.FAILED,
                problem=_problem(
                    500, "Import Failed", "The import failed; nothing was written.", "import-failed"
                ),
            )

    async def _tidy(self, kind: ImportKind) -> None:
        """After the job ended, VACUUM the tables of an import whose transaction was rolled back
        (a dry run, a rejected or failed import) once it had written IMPORT_VACUUM_ROWS rows:
        they are dead rows and index entries under the keys the same file's next import writes
        again (ADR 73). Its readers are stopped first. Bounded by a quarter of the lease: the
        runner stops a child whose job ended a beat ago, a third of the lease or more."""
        report = self.report
        if report is None or self.committed:
            return
        written = report.created + report.updated
        if written < self.vacuum_rows:
            return
        await asyncio.to_thread(readers(self.runtime.settings).shutdown)
        tables = WRITTEN[kind]
        started = time.perf_counter()
        try:
            await queries.vacuum(self.runtime.engine, tables, self.lease / 4)
        except Exception:  # autovacuum comes later instead
            log.warning("tables of a discarded import not vacuumed", exc_info=True)
            return
        log.info(
            "tables of a discarded import vacuumed",
            tables=[t.name for t in tables],
            rows=written,
            seconds=round(time.perf_counter() - started, 2),
        )

    async def _restore(self, job_id: uuid.UUID, file: IO[bytes]) -> None:
        """The stored file into ``file``, a part at a time; the report of an earlier run gone."""
        async with self.runtime.sessions() as session, session.begin():
            await queries.clear_lines(session, job_id)
        part = 0
        while True:
            async with self.runtime.sessions() as session:
                data = await queries.file_part(session, job_id, part)
            if data is None:
                break
            await asyncio.to_thread(file.write, data)
            part += 1
        await asyncio.to_thread(file.seek, 0)

    async def _import(self, job: Any, file: IO[bytes]) -> None:
        mode = ImportMode(job.mode)
        principal = Principal.model_validate(job.principal)
        job_id = job.id

        async def opened(opening: Opening) -> None:
            async with self.runtime.sessions() as session, session.begin():
                await queries.set_job(
                    session,
                    job_id,
                    self.owner,
                    total_rows=opening.rows,
                    header=opening.header,
                    source=opening.source,
                )

        async def chunk_done(
            rows: list[ParsedRow], lines: list[RowReport], counts: ImportCounts
        ) -> None:
            await self._progress(job_id, rows, lines, counts)

        async def committing(session: AsyncSession, done: ImportReport) -> None:
            if not await queries.finish_job(
                session,
                job_id,
                self.owner,
                state=JobState.SUCCEEDED,
                counts=counts_of(done).model_dump(),
            ):
                raise _LeaseLost

        report = self.report = ImportReport(mode=mode)
        run = run_persons_import if job.kind == ImportKind.PERSON else run_import
        try:
            done = await run(
                self.runtime,
                principal,
                file,
                job.filename,
                mode=mode,
                overrides=dict(job.overrides),
                replace_lists=job.replace_lists,
                directions=list(job.directions),
                max_rows=self.max_rows,
                too_many=f"more than {self.max_rows:,} rows",
                on_chunk=chunk_done,
                on_open=opened,
                before_commit=committing,
                report=report,
            )
        except PersonsFile as exc:
            await self._refuse(
                job_id, _problem(422, "Not A File Of Organizations", f"{exc}.", "persons-file")
            )
            return
        except (TabularError, ImportReadFailed) as exc:
            await self._refuse(
                job_id,
                _problem(
                    422, "Unreadable File", f"The file cannot be read: {exc}.", "unreadable-file"
                ),
            )
            return
        except ImportRejected as exc:
            async with self.runtime.sessions() as session, session.begin():
                await queries.clear_lines(session, job_id, rank=1)  # nothing was written
            await self._finish(
                job_id,
                state=JobState.REJECTED,
                counts=rejected_counts(exc.report).model_dump(),
                problem=_problem(422, "Import Rejected", str(exc), "import-rejected"),
            )
            return
        except _LeaseLost:
            log.warning("import job taken over by another process", job=str(job_id))
            return
        self.committed = mode is not ImportMode.DRY_RUN
        if mode is ImportMode.DRY_RUN:
            await self._finish(
                job_id, state=JobState.SUCCEEDED, counts=counts_of(done).model_dump()
            )

    async def _progress(
        self, job_id: uuid.UUID, rows: list[ParsedRow], lines: list[RowReport], counts: ImportCounts
    ) -> None:
        """A chunk's report lines (with the rows that failed as read) and the counts up to it."""
        cells = {row.number: row.cells for row in rows}
        records = [
            {
                "job_id": job_id,
                "rank": 0 if line.errors else 1,
                "row": line.row,
                "line": line.model_dump(mode="json"),
                "cells": cells.get(line.row) if line.errors else None,
            }
            for line in lines
        ]
        async with self.runtime.sessions() as session, session.begin():
            await Copy.of(import_job_lines, records).write(session)
            await queries.set_job(
                session,
                job_id,
                self.owner,
                rows_read=rows[-1].number - 1 if rows else 0,
                counts=counts.model_dump(),
            )

    async def _refuse(self, job_id: uuid.UUID, problem: dict[str, Any]) -> None:
        """End a job whose file was not imported: failed, with its problem."""
        async with self.runtime.sessions() as session, session.begin():
            await queries.clear_lines(session, job_id, rank=1)  # nothing was written
        await self._finish(job_id, state=JobState.FAILED, problem=problem)

    async def _finish(self, job_id: uuid.UUID, **values: Any) -> None:
        async with self.runtime.sessions() as session, session.begin():
            await queries.finish_job(session, job_id, self.owner, **values)
