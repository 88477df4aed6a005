"""Import of persons (contacts) from .xlsx or CSV (ADR 63), run by the import jobs of ADR 41 as
the organizations' import is: read and checked by a reader process a chunk at a time, matched
and written in one transaction (a dry run rolls it back, all-or-nothing rolls it back when a
row is bad, valid-rows commits the good rows), writing imports one at a time.

A row matches a live person the caller sees by e-mail, then by phone (rules.KnownPersons); a
new person is written, and a matched one patched, by the persons feature's own operations
(``persons.service.insert_person``, ``patch_person``, ``employ``) in a unit of work of the
import's transaction, so each is checked, audited and announced exactly as over the API. Each
row's writes are a savepoint: a row refused there leaves nothing behind.
"""

from __future__ import annotations

import asyncio
from typing import IO, Any

from clientele_shared.auth.access import may_write
from clientele_shared.auth.principal import Principal
from clientele_shared.http.problems import ProblemError
from clientele_shared.runtime import ServiceRuntime
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.imports import queries as import_queries
from clientele_directory.imports.reader import ReadPlan, RowReader, readers
from clientele_directory.imports.rules import (
    ImportMode,
    ImportReport,
    RowAction,
    RowProblem,
    RowReport,
)
from clientele_directory.imports.service import ChunkDone, Committing, ImportRejected, Opened
from clientele_directory.person_imports import queries
from clientele_directory.person_imports.reading import person_chunks
from clientele_directory.person_imports.rules import (
    KnownPersons,
    Organizations,
    ParsedPerson,
    PersonKeys,
)
from clientele_directory.persons import service as persons
from clientele_directory.persons.rules import EmploymentDraft, Person, PersonPatch, person_changes
from clientele_directory.work import legacy_work


def _united(current: list[Any], given: list[Any], key: Any) -> list[Any]:
    """The current values, then the given ones not among them."""
    seen = {key(value) for value in current}
    return [*current, *(value for value in given if key(value) not in seen)]


def person_patch(parsed: ParsedPerson, current: Person) -> PersonPatch:
    """What a row changes of a matched person: the names and birthday it gives; its phones and
    e-mails added to his; its directions added to his; consent only where it gives it."""
    assert parsed.draft is not None
    draft, given = parsed.draft, parsed.given
    patch: dict[str, Any] = {
        field: getattr(draft, field)
        for field in (
            "last_name",
            "first_name",
            "middle_name",
            "last_name_latin",
            "first_name_latin",
            "birthday",
        )
        if field in given
    }
    if "phones" in given:
        patch["phones"] = [
            p.model_dump(mode="json")
            for p in _united(current.phones, draft.phones, lambda p: (p.number, p.extension))
        ]
    if "emails" in given:
        patch["emails"] = _united(current.emails, draft.emails, str.lower)
    if "directions" in given:
        patch["directions"] = _united(current.directions, draft.directions, str)
    if "consent" in given:
        consent = draft.consent.model_dump()
        patch["consent"] = {
            **current.consent.model_dump(),
            **{k: v for k, v in consent.items() if k in parsed.consent_given},
        }
    return PersonPatch.model_validate(patch)


class _PersonImporter:
    """Matches and writes the chunks of one import of persons inside its transaction."""

    def __init__(
        self,
        session: AsyncSession,
        runtime: ServiceRuntime,
        principal: Principal,
        report: ImportReport,
        on_chunk: ChunkDone,
    ) -> None:
        self.session, self.runtime, self.principal = session, runtime, principal
        self.report, self.on_chunk = report, on_chunk
        self.keys = PersonKeys()
        self.bad = 0
        self.lines: list[RowReport] = []

    async def chunk(self, rows: list[ParsedPerson]) -> None:
        known = KnownPersons(
            await queries.matching_persons(
                self.session,
                self.principal,
                sorted({e for r in rows for e in r.emails()}),
                sorted({p for r in rows for p in r.phones()}),
            )
        )
        names = sorted({r.company for r in rows if r.company and r.draft and not r.company_inn})
        keys = await queries.name_keys(self.session, names)
        orgs = Organizations(
            await queries.named_organizations(
                self.session,
                self.principal,
                sorted({r.company_inn for r in rows if r.company_inn and r.draft}),
                sorted(set(keys.values())),
            ),
            keys,
        )
        for parsed in rows:
            await self._row(parsed, known, orgs)
        kept, self.lines = self.lines, []
        await self.on_chunk(rows, kept)  # type: ignore[arg-type]

    async def _row(self, parsed: ParsedPerson, known: KnownPersons, orgs: Organizations) -> None:
        line = RowReport(row=parsed.number, action=RowAction.SKIPPED, errors=list(parsed.errors))
        draft = parsed.draft
        if draft is not None and (duplicate := self.keys.check(parsed)) is not None:
            line.errors.append(duplicate)
        if line.errors or draft is None:
            self._finish(line)
            return
        target, matched_by, problem = known.match(parsed)
        if problem is not None:
            line.errors.append(problem)
            self._finish(line)
            return
        if target is None and not may_write(self.principal, draft.directions):
            line.errors.append(
                RowProblem(
                    field="directions",
                    message="you may only import into your directions",
                    kind="forbidden_direction",
                )
            )
            self._finish(line)
            return
        org_id, warning = orgs.resolve(parsed.company, parsed.company_inn)
        if warning is not None:
            line.warnings.append(warning)
        job = (
            EmploymentDraft(
                organization_id=org_id, position=parsed.position, department=parsed.department
            )
            if org_id is not None
            else None
        )
        line.organization_id = org_id
        try:
            async with (
                self.session.begin_nested(),
                legacy_work(self.session, self.runtime, self.principal) as uow,
            ):
                if target is None:
                    employments = [job] if job is not None else []
                    draft = draft.model_copy(update={"employments": employments})
                    person = await persons.insert_person(uow, self.principal, draft)
                    line.action = RowAction.CREATED
                else:
                    line.matched_by = matched_by
                    current = await persons.visible_person(
                        self.session, self.principal, target, for_update=True
                    )
                    person = await persons.patch_person(
                        uow, self.principal, current, person_patch(parsed, current)
                    )
                    changes = person_changes(current, person)
                    if job is not None and all(
                        e.organization_id != job.organization_id for e in current.employments
                    ):
                        await persons.employ(uow, self.principal, current.id, job)
                        changes["employments"] = {
                            "old": None,
                            "new": job.model_dump(mode="json", exclude_none=True),
                        }
                    line.action = RowAction.UPDATED if changes else RowAction.UNCHANGED
                    line.changes = changes or None
                line.person_id = person.id
        except ProblemError as exc:
            line.errors.extend(_problems_of(exc))
        self._finish(line)

    def _finish(self, line: RowReport) -> None:
        if line.errors:
            line.action = RowAction.SKIPPED
            line.person_id = line.organization_id = None
            line.changes = None
            self.bad += 1
        self.report.count(line)
        keep = self.report.mode is ImportMode.DRY_RUN or line.action is not RowAction.CREATED
        if keep or line.warnings:
            self.lines.append(line)


def _problems_of(exc: ProblemError) -> list[RowProblem]:
    """A refused write's problems as row problems (a validation's per field)."""
    errors = exc.extensions.get("errors")
    if isinstance(errors, list) and errors:
        return [
            RowProblem(
                field=".".join(str(p) for p in e.get("loc", ()) if not isinstance(p, int)) or None,
                message=str(e.get("msg", exc.detail or exc.title)),
                kind=str(e.get("type", exc.kind)),
            )
            for e in errors
            if isinstance(e, dict)
        ]
    return [RowProblem(message=exc.detail or exc.title, kind=exc.kind)]


class _Rollback(Exception):
    pass


async def run_persons_import(
    runtime: ServiceRuntime,
    principal: Principal,
    file: IO[bytes],
    filename: str | None,
    *,
    mode: ImportMode,
    overrides: dict[str, str | None],
    directions: list[str],
    max_rows: int,
    too_many: str,
    on_chunk: ChunkDone,
    on_open: Opened | None = None,
    before_commit: Committing | None = None,
    report: ImportReport | None = None,
    replace_lists: bool = False,
) -> ImportReport:
    """Run one import of persons in one transaction, as ``imports.service.run_import`` runs
    one of organizations (the same arguments; lists are always merged); the counts.

    Raises TabularError for a file that cannot be read and ImportRejected for an
    all-or-nothing import with bad rows (nothing written either way).
    """
    del replace_lists  # a person's phones and e-mails are merged (ADR 63)
    report = report or ImportReport(mode=mode)
    importer: _PersonImporter | None = None
    try:
        async with runtime.sessions() as session, session.begin():
            importer = _PersonImporter(session, runtime, principal, report, on_chunk)
            settings = runtime.settings
            plan = ReadPlan(
                filename=filename,
                overrides=overrides,
                labels={},
                directions=directions,
                max_rows=max_rows,
                too_many=too_many,
                chunk_rows=int(getattr(settings, "import_chunk_rows", 2500)),
                rows=person_chunks,
            )
            pool = readers(int(getattr(settings, "import_readers", 2)), settings.gc_young_threshold)
            async with RowReader(pool, file, plan) as reader:
                assert reader.opening is not None
                if on_open is not None:
                    await on_open(reader.opening)
                if mode is not ImportMode.DRY_RUN:
                    await session.execute(import_queries.IMPORT_LOCK)
                following = asyncio.ensure_future(reader.chunk())
                try:
                    while rows := await following:
                        following = asyncio.ensure_future(reader.chunk())
                        await importer.chunk(rows)  # type: ignore[arg-type]
                finally:
                    if not following.cancel() and not following.cancelled():
                        following.exception()
            if mode is ImportMode.DRY_RUN or (mode is ImportMode.ALL_OR_NOTHING and importer.bad):
                raise _Rollback
            if before_commit is not None:
                await before_commit(session, report)
    except _Rollback:
        if mode is ImportMode.ALL_OR_NOTHING:
            assert importer is not None
            raise ImportRejected(importer.bad, report) from None
    return report
