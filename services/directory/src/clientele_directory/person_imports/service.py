"""Import of persons (contacts) from .xlsx or CSV (ADR 63), run by the import jobs of ADR 41 as
the organizations' import is: read and checked by a reader process a chunk at a time, matched
and written in one transaction (a dry run rolls it back, all-or-nothing rolls it back when a
row is bad, valid-rows commits the good rows), writing imports one at a time.

A row matches a live person the caller sees by e-mail, then by phone (rules.KnownPersons); the
new persons, the changes of matched ones and their employments are written per chunk by the
persons feature's own set-based operations (``persons.service.insert_persons``,
``write_patches`` after ``checked_patch``, ``employ_many``: the API's single operations are
these with one record), so each is checked, audited and announced exactly as over the API, in
a handful of statements per chunk (ADR 67). A row is checked before anything of it is
written: a row refused leaves nothing behind.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from clientele_shared.auth.access import may_write
from clientele_shared.auth.principal import Principal
from clientele_shared.http.problems import ProblemError
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import UnitOfWork, actor_of
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.imports.rules import (
    ImportMode,
    ImportReport,
    RowAction,
    RowProblem,
    RowReport,
    counts_of,
)
from clientele_directory.imports.service import ChunkDone, Start, import_runner
from clientele_directory.person_imports import queries
from clientele_directory.person_imports.reading import person_chunks
from clientele_directory.person_imports.rules import (
    KnownPerson,
    KnownPersons,
    Organizations,
    ParsedPerson,
    PersonKeys,
)
from clientele_directory.persons import service as persons
from clientele_directory.persons.rules import (
    EmploymentDraft,
    Person,
    PersonDraft,
    PersonFields,
    PersonPatch,
)
from clientele_directory.tables import audit_log


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


@dataclass
class _Update:
    """What a row changes of a matched person, written with the others of its chunk."""

    current: Person
    patched: PersonFields | None
    """The person's own fields after the row (None: the row changes none of them)."""
    changes: dict[str, Any]
    job: EmploymentDraft | None
    """The employment the row adds (None: none)."""


class _PersonImporter:
    """Matches and writes the chunks of one import of persons inside its transaction: per
    chunk one lookup of the persons and one of the organizations the rows name, then the
    persons feature's set-based writes (``write_patches``, ``employ_many``, ``insert_persons``)
    in one unit of work whose audit entries and events are written together at the chunk's
    end. Rows behave as if imported one after another: a row matching a person an earlier row
    of its chunk changed sees that change (the earlier changes are written first).

    Every refusal those writers could raise is decided per row before them, so none raises
    here and a refused row is skipped alone: a new person's attribute values
    (``resolved_drafts``) and directions (``may_write``), a matched one's patch
    (``checked_patch``: values, directions, left without one); the organizations a row links
    to are live, seen by the caller and locked against change (``named_organizations``), as
    the writers' check of an employment's organization asks; the matched persons are locked
    for update (``matching_persons``) and written once per flush at the version read, so the
    versioned writes' 412 cannot arise."""

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
        self.pending: dict[uuid.UUID, _Update] = {}
        self.current: dict[uuid.UUID, Person] = {}
        self.counts: dict[uuid.UUID, int] = {}

    @property
    def discarding(self) -> bool:
        """Whether the transaction is sure to be rolled back (a dry run, or an all-or-nothing
        import with a bad row): the audit entries and events are then not written (ADR 61)."""
        mode = self.report.mode
        return mode is ImportMode.DRY_RUN or (mode is ImportMode.ALL_OR_NOTHING and self.bad > 0)

    async def chunk(self, rows: list[ParsedPerson]) -> None:
        found = await persons.with_employments(
            self.session,
            self.principal,
            await queries.matching_persons(
                self.session,
                self.principal,
                sorted({e for r in rows for e in r.emails()}),
                sorted({p for r in rows for p in r.phones()}),
            ),
        )
        self.current = {person.id: person for person in found}
        self.counts = await persons.live_employment_counts(self.session, list(self.current))
        known = KnownPersons(KnownPerson.of(person) for person in found)
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
        uow = UnitOfWork(
            self.session,
            self.runtime.outbox,
            audit_log,
            actor_of(self.principal),
            self.principal.name,
            batched=True,
            defer_at=await queries.now(self.session),
        )
        creating: list[tuple[PersonDraft, RowReport]] = []
        for parsed in rows:
            await self._row(uow, parsed, known, orgs, creating)
        await self._write_updates(uow)
        await self._create(uow, creating)
        await self.session.execute(queries.MERGE_PENDING)
        if not self.discarding:
            await uow.finish()
        kept, self.lines = sorted(self.lines, key=lambda line: line.row), []
        await self.on_chunk(rows, kept, counts_of(self.report))  # type: ignore[arg-type]

    async def flush(self) -> None:
        """Nothing: :meth:`chunk` writes a chunk of persons whole."""

    async def _row(
        self,
        uow: UnitOfWork,
        parsed: ParsedPerson,
        known: KnownPersons,
        orgs: Organizations,
        creating: list[tuple[PersonDraft, RowReport]],
    ) -> None:
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
        if target is None:
            employments = [job] if job is not None else []
            creating.append((draft.model_copy(update={"employments": employments}), line))
            return  # finished when written
        line.matched_by = matched_by
        if target in self.pending:  # a second row of this chunk matches him: he is written first
            await self._write_updates(uow)
        current = self.current[target]
        try:
            patched, changes = await persons.checked_patch(
                self.session,
                self.principal,
                current,
                person_patch(parsed, current),
                self.counts[target],
            )
        except ProblemError as exc:
            line.errors.extend(_problems_of(exc))
            self._finish(line)
            return
        line.person_id = target
        if job is not None and any(e.organization_id == org_id for e in current.employments):
            job = None
        if changes or job is not None:
            self.pending[target] = _Update(current, patched if changes else None, changes, job)
            known.put(
                KnownPerson(
                    target,
                    frozenset(e.lower() for e in patched.emails),
                    frozenset(p.number for p in patched.phones),
                )
            )
        if job is not None:
            changes = {
                **changes,
                "employments": {"old": None, "new": job.model_dump(mode="json", exclude_none=True)},
            }
        line.action = RowAction.UPDATED if changes else RowAction.UNCHANGED
        line.changes = changes or None
        self._finish(line)

    async def _write_updates(self, uow: UnitOfWork) -> None:
        """Write the pending updates and employments of matched persons (their audit entries
        and events staged in ``uow``); the persons as they are after them."""
        if not self.pending:
            return
        pending, self.pending = list(self.pending.values()), {}
        written = await persons.write_patches(
            uow,
            self.principal,
            [(u.current, u.patched, u.changes) for u in pending if u.patched is not None],
        )
        jobs = await persons.employ_many(
            uow, self.principal, [(u.current.id, u.job) for u in pending if u.job is not None]
        )
        after = {person.id: person for person in written}
        for u in pending:
            person = after.get(u.current.id, u.current)
            added = [job for job in jobs if job.person_id == person.id]
            self.current[person.id] = person.model_copy(
                update={"employments": [*person.employments, *added]}
            )
            self.counts[person.id] += len(added)

    async def _create(self, uow: UnitOfWork, creating: list[tuple[PersonDraft, RowReport]]) -> None:
        """Write the chunk's new persons together (their employments, audit and events too)."""
        resolved = await persons.resolved_drafts(
            self.session, self.principal, [draft for draft, _ in creating]
        )
        writing: list[tuple[PersonDraft, RowReport]] = []
        for (_, line), draft in zip(creating, resolved, strict=True):
            if isinstance(draft, ProblemError):
                line.errors.extend(_problems_of(draft))
                self._finish(line)
            else:
                writing.append((draft, line))
        made = await persons.insert_persons(uow, self.principal, [d for d, _ in writing])
        for person, (_, line) in zip(made, writing, strict=True):
            line.person_id, line.action = person.id, RowAction.CREATED
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


def _persons(
    runtime: ServiceRuntime, principal: Principal, on_chunk: ChunkDone, replace_lists: bool
) -> Start:
    """A person's phones and e-mails are always merged (ADR 63): ``replace_lists`` is unused."""

    async def start(
        session: AsyncSession, report: ImportReport
    ) -> tuple[_PersonImporter, dict[str, Any]]:
        return _PersonImporter(session, runtime, principal, report, on_chunk), {
            "rows": person_chunks
        }

    return start


run_persons_import = import_runner(_persons)
"""Run one import of persons (the arguments of ``imports.service.run_import``)."""
