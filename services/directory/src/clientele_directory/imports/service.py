"""Import of organizations from .xlsx or CSV: dry run, all-or-nothing, or the valid rows.

The file is read and its rows checked by a reader process (``reader``), a chunk of rows
at a time, the next chunk while the current one is matched and written, all inside one
transaction: a dry run rolls it back, all-or-nothing rolls it back when any row is bad (422
with the report), valid-rows commits the good rows. Per chunk, a handful of set-based
statements: one lookup of the organizations the rows may match (INN, e-mail, phone — index
scans), the register, the employees and references the rows name, a COPY of the new
organizations, the merge of the GIN pending lists the next look-ups probe; then, while the next
chunk's rows are decided (ADR 72), one similar-name query (trigram indexes), the merge of the
other GIN pending lists, a COPY of the audit rows and one of the outbox rows, and the chunk's
report lines; updates are written together per chunk. Rows behave as if imported one after
another: a row sees what the rows before it did, whichever chunk they were in.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import IO, Any, Protocol

from clientele_shared.auth.access import may_write
from clientele_shared.auth.principal import Principal
from clientele_shared.bulk import Copy
from clientele_shared.events.envelope import Envelope
from clientele_shared.events.schemas.directory import OrganizationCreatedV2, OrganizationState
from clientele_shared.events.state import next_revisions
from clientele_shared.http.problems import NotFound, ProblemError
from clientele_shared.observability import current_correlation_id
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import actor_of
from fastapi import UploadFile
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.attributes.rules import (
    AttributeDefinition,
    AttributeErrors,
    EntityKind,
    apply_attribute_patch,
    references,
)
from clientele_directory.attributes.service import definitions_for
from clientele_directory.imports import messages, queries
from clientele_directory.imports.reader import Opening, ReadPlan, RowReader, readers
from clientele_directory.imports.rules import (
    Candidate,
    FileKeys,
    ImportCounts,
    ImportJob,
    ImportKind,
    ImportMode,
    ImportReport,
    JobState,
    KnownOrganizations,
    ParsedRow,
    ReportPage,
    RowAction,
    RowProblem,
    RowReport,
    Staff,
    counts_of,
    parse_mapping,
    patch_against,
)
from clientele_directory.organizations.rules import (
    Organization,
    OrganizationDraft,
    OrganizationFields,
    OrganizationPatch,
    PatchRejected,
    apply_patch,
    changes_between,
    creation_changes_of,
    moved_directions,
    storage_values,
)
from clientele_directory.publishing import created_payload, organization_updated
from clientele_directory.register import service as register
from clientele_directory.state import created_state_payload, written_organization_states
from clientele_directory.tables import (
    audit_log,
    organizations,
)
from clientele_directory.tabular import XlsxStream
from clientele_directory.values import email_domain
from clientele_directory.work import legacy_work

YIELD_ROWS = 25
"""Rows decided between two turns of the event loop: the previous chunk's tail, waiting on the
database, goes on between them."""


def _unreadable(detail: str) -> ProblemError:
    return ProblemError(
        422, "Unreadable File", f"The file cannot be read: {detail}.", kind="unreadable-file"
    )


def _problems(errors: list[Any]) -> list[RowProblem]:
    return [
        RowProblem(
            field=".".join(str(p) for p in e["loc"]),
            message=e["msg"],
            kind=str(e.get("type", "invalid")),
        )
        for e in errors
    ]


class _New:
    """A new organization of a chunk: its id, validated fields, their column values, whether
    the register blocks it."""

    __slots__ = ("blocked", "draft", "id", "values")

    def __init__(
        self, id: uuid.UUID, draft: OrganizationFields, values: dict[str, Any], blocked: bool
    ) -> None:
        self.id, self.draft, self.values, self.blocked = id, draft, values, blocked


class _Update:
    """An update decided for a row, written with the others of its chunk."""

    def __init__(
        self, current: Organization, patched: Organization, changes: dict[str, Any]
    ) -> None:
        self.current, self.patched, self.changes = current, patched, changes


ChunkDone = Callable[[list[ParsedRow], list[RowReport], ImportCounts], Awaitable[None]]
"""Called after each chunk with its rows, the report lines kept from it, in row order, and the
counts of the rows up to its last."""
Opened = Callable[[Opening], Awaitable[None]]
"""Called with the file's header and row count, before the first chunk."""
Committing = Callable[[AsyncSession, ImportReport], Awaitable[None]]
"""Called inside the import's transaction just before a writing import commits."""


class _Importer:
    """Matches and writes the chunks of one import inside the caller's transaction."""

    def __init__(
        self,
        session: AsyncSession,
        runtime: ServiceRuntime,
        principal: Principal,
        definitions: dict[str, AttributeDefinition],
        report: ImportReport,
        on_chunk: ChunkDone,
    ) -> None:
        self.session, self.runtime, self.principal = session, runtime, principal
        self.definitions, self.report, self.on_chunk = definitions, report, on_chunk
        self.keys = FileKeys()
        self.replace_lists = False
        """Whether the lists of a row replace an organization's (else they are added to them)."""
        self.bad = 0
        self.actor = actor_of(principal)
        self.pending: dict[uuid.UUID, _Update] = {}
        self.written: Counter[str] = Counter()
        """The new organizations written so far per direction (ADR 77)."""
        self.tail: Callable[[], Awaitable[None]] | None = None
        """What is left of the last chunk written (its similar names, audit entries, events
        and report lines): started once the next chunk's look-ups are read."""
        self.behind: asyncio.Future[None] | None = None
        """That tail running, while the next chunk's rows are decided."""
        self.staff: Staff | None = None
        """The employees a row's responsible may name, read at the first row that names one."""
        self.now: datetime | None = None
        """The transaction's time, read once: what the database writes as ``now()``."""

    @property
    def discarding(self) -> bool:
        """Whether the transaction is sure to be rolled back (a dry run, or an all-or-nothing
        import with a bad row): what only a commit would show (audit entries, events, state
        records) is then not written."""
        mode = self.report.mode
        return mode is ImportMode.DRY_RUN or (mode is ImportMode.ALL_OR_NOTHING and self.bad > 0)

    def _writable(self, directions: list[str] | set[str]) -> bool:
        """Writing, unlike reading, is not granted by seeing all directions (a security officer)."""
        return may_write(self.principal, directions)

    # --- the lookups of a chunk (one statement each) -------------------------------------------

    async def _existing(self, rows: list[ParsedRow]) -> KnownOrganizations:
        """Live organizations the caller sees that a row may match, locked for the import."""
        return KnownOrganizations(
            await queries.matching(
                self.session,
                self.principal,
                inns=sorted({r.inn for r in rows if r.inn}),
                emails=sorted({e for r in rows for e in r.emails()}),
                phones=sorted({p for r in rows for p in r.phones()}),
                ids=sorted({r.id for r in rows if r.id is not None}),
            )
        )

    async def _register(self, rows: list[ParsedRow]) -> tuple[set[str], set[str]]:
        inns = sorted({r.inn for r in rows if r.inn})
        domains = sorted({email_domain(e) for r in rows for e in r.emails()})
        return await queries.registered(self.session, inns, domains)

    async def _responsibles(self, rows: list[ParsedRow]) -> None:
        """Rows naming their responsible get the employee's id, or the problem why none."""
        named = [r for r in rows if r.responsible is not None]
        if not named:
            return
        if self.staff is None:
            self.staff = Staff(await queries.visible_staff(self.session, self.principal))
        for parsed in named:
            assert parsed.responsible is not None
            employee_id, problem = self.staff.find(parsed.responsible)
            if problem is not None:
                parsed.errors.append(problem)
                parsed.draft = None
            elif parsed.draft is not None:
                parsed.draft = parsed.draft.model_copy(
                    update={"responsible_employee_id": employee_id}
                )

    async def _employees(self, rows: list[ParsedRow]) -> set[uuid.UUID]:
        ids = {
            r.draft.responsible_employee_id
            for r in rows
            if r.draft and r.draft.responsible_employee_id
        }
        return await queries.active_employees(self.session, ids)

    async def _references(self, rows: list[ParsedRow]) -> set[uuid.UUID]:
        """The live records the caller sees among those the rows' reference attributes name."""
        wanted: dict[EntityKind, set[uuid.UUID]] = {}
        linking = {k for k, d in self.definitions.items() if d.reference_kind is not None}
        for parsed in rows:
            given = {k: v for k, v in parsed.attributes.items() if k in linking}
            if not given or parsed.draft is None:
                continue
            try:
                values = apply_attribute_patch(self.definitions, {}, given, creating=False)
            except AttributeErrors:
                continue  # reported with the row
            for _, kind, record_id in references(self.definitions, values):
                wanted.setdefault(kind, set()).add(record_id)
        seen: set[uuid.UUID] = set()
        if ids := wanted.get(EntityKind.ORGANIZATION):
            seen |= await queries.visible_organizations(self.session, self.principal, ids)
        if ids := wanted.get(EntityKind.PERSON):
            seen |= await queries.visible_persons(self.session, self.principal, ids)
        return seen

    def _missing_references(
        self, values: dict[str, Any], given: dict[str, Any], seen: set[uuid.UUID]
    ) -> list[RowProblem]:
        changed = {key: values[key] for key in given if values.get(key) is not None}
        return [
            RowProblem(field=f"attributes.{key}", message=f"no such {kind.value}", kind="reference")
            for key, kind, record_id in references(self.definitions, changed)
            if record_id not in seen
        ]

    # --- one chunk ----------------------------------------------------------------------------

    async def chunk(self, rows: list[ParsedRow]) -> None:
        """Match and write one chunk. Its look-ups are read first; then the previous chunk's
        tail runs while this chunk's rows are decided (the loop lets it on every few rows), and
        has ended before this chunk writes anything (ADR 72)."""
        await self._responsibles(rows)
        known = await self._existing(rows)
        blocked_inns, blocked_domains = await self._register(rows)
        active_employees = await self._employees(rows)
        seen_references = await self._references(rows)
        if self.tail is not None:
            self.behind, self.tail = asyncio.ensure_future(self.tail()), None
        lines: list[RowReport] = []
        creating: list[tuple[ParsedRow, RowReport]] = []
        try:
            for index, parsed in enumerate(rows):
                if index % YIELD_ROWS == 0:
                    await asyncio.sleep(0)  # the tail's statements go on
                line = RowReport(row=parsed.number, action=RowAction.SKIPPED, errors=parsed.errors)
                draft = parsed.draft
                if draft is not None:
                    if draft.inn in blocked_inns or any(
                        email_domain(e) in blocked_domains for e in draft.emails
                    ):
                        line.warnings.append(_unwanted())
                    if (dup := self.keys.check(parsed)) is not None:
                        line.errors.append(dup)
                    rid = draft.responsible_employee_id
                    if rid is not None and rid not in active_employees:
                        line.errors.append(
                            RowProblem(
                                field="responsible_employee_id",
                                message="no such active employee",
                                kind="unknown_reference",
                            )
                        )
                if line.errors or draft is None:
                    self._finish(line, lines)
                    continue
                target, matched, problem = known.match(parsed)
                if problem is not None:
                    line.errors.append(problem)
                    self._finish(line, lines)
                elif target is None:
                    if self._new(parsed, draft, line, seen_references):
                        creating.append((parsed, line))
                    else:
                        self._finish(line, lines)
                else:
                    line.matched_by = matched
                    if target.id in self.pending:  # a second update of it in this chunk
                        await self._caught_up()
                        await self._write_updates()
                    patched = self._update(parsed, target, line, seen_references)
                    if patched is not None:
                        known.put(patched)
                    self._finish(line, lines)
            await self._caught_up()
        finally:
            if self.behind is not None:  # this chunk failed: the tail ends before the rollback
                behind, self.behind = self.behind, None
                await _settled(behind)
        await self._write_updates()
        if creating:
            await self._create(rows, creating, lines, blocked_inns, blocked_domains)
        else:
            self.tail = functools.partial(
                self._merged_and_reported, rows, lines, counts_of(self.report)
            )

    async def flush(self) -> None:
        """Write the last chunk's tail."""
        if self.tail is not None:
            tail, self.tail = self.tail, None
            await tail()

    async def _caught_up(self) -> None:
        """Wait for the previous chunk's tail (its error raised here)."""
        if self.behind is not None:
            behind, self.behind = self.behind, None
            await behind

    def _new(
        self,
        parsed: ParsedRow,
        draft: OrganizationDraft,
        line: RowReport,
        seen_references: set[uuid.UUID],
    ) -> bool:
        """Whether the row, matching no organization, is created (its attributes resolved on
        its draft), else its problems on the line."""
        if not self._writable(draft.directions):
            line.errors.append(
                RowProblem(
                    field="directions",
                    message="you may only import into your directions",
                    kind="forbidden_direction",
                )
            )
            return False
        try:
            values = apply_attribute_patch(self.definitions, {}, parsed.attributes, creating=True)
        except AttributeErrors as exc:
            line.errors.extend(_problems(exc.errors))
            return False
        line.errors.extend(self._missing_references(values, parsed.attributes, seen_references))
        if line.errors:
            return False
        parsed.draft = draft.model_copy(update={"attributes": values})
        return True

    def _update(
        self,
        parsed: ParsedRow,
        current: Organization,
        line: RowReport,
        seen_references: set[uuid.UUID],
    ) -> Organization | None:
        """Decide the row's update of ``current`` (written by :meth:`_write_updates`); the
        organization as it will be, or None when nothing changes or the row is refused."""
        line.organization_id = current.id
        if current.blocked and not any(w.kind == "unwanted" for w in line.warnings):
            line.warnings.append(_unwanted())
        try:
            patch = patch_against(parsed, current.fields(), replace_lists=self.replace_lists)
            patched = apply_patch(current, OrganizationPatch(**patch))
            values = apply_attribute_patch(
                self.definitions, current.attributes, parsed.attributes, creating=False
            )
        except (PatchRejected, AttributeErrors) as exc:
            line.errors.extend(_problems(exc.errors))
            return None
        line.errors.extend(self._missing_references(values, parsed.attributes, seen_references))
        if line.errors:
            return None
        patched = patched.model_copy(update={"attributes": values})
        changes = changes_between(current, patched)
        if not changes:
            line.action = RowAction.UNCHANGED
            return None
        line.changes = changes
        if not self._writable(moved_directions(current.directions, patched.directions)):
            line.errors.append(
                RowProblem(
                    field="directions",
                    message="you may only move records into your directions",
                    kind="forbidden_direction",
                )
            )
            return None
        line.action = RowAction.UPDATED
        after = _organization(
            patched,
            id=current.id,
            version=current.version + 1,
            blocked=current.blocked,
            created_at=current.created_at,
        )
        self.pending[current.id] = _Update(current, after, changes)
        return after

    async def _write_updates(self) -> None:
        """Write the pending updates: one executemany UPDATE, their blocked flags read back,
        one audit INSERT, one outbox INSERT; a change of the blocked flag is announced."""
        if not self.pending:
            return
        pending, self.pending = list(self.pending.values()), {}
        p = self.principal
        await queries.update_organizations(
            self.session,
            [
                {
                    "b_id": u.current.id,
                    **storage_values(u.patched),
                    "version": u.patched.version,
                    "updated_by": p.subject,
                }
                for u in pending
            ],
        )
        await self.session.execute(queries.MERGE_PENDING, {"probed": True})
        blocked = await queries.blocked_flags(self.session, [u.current.id for u in pending])
        if self.discarding:
            return
        now = await self._now()
        written = [
            (u, u.patched.model_copy(update={"blocked": blocked[u.current.id], "updated_at": now}))
            for u in pending
        ]
        await self._stage(
            self._audit_records(
                [(org.id, "updated", org.version, u.changes) for u, org in written]
            ),
            [
                organization_updated(
                    self.runtime.outbox,
                    org,
                    u.changes,
                    self.actor,
                    previous_directions=u.current.directions,
                )
                for u, org in written
            ],
            [org for _, org in written],
        )
        for u, org in written:
            if org.blocked != u.current.blocked:
                async with legacy_work(self.session, self.runtime, p) as uow:
                    await register.announce_organization(uow, org, was_blocked=u.current.blocked)

    async def _create(
        self,
        rows: list[ParsedRow],
        creating: list[tuple[ParsedRow, RowReport]],
        lines: list[RowReport],
        blocked_inns: set[str],
        blocked_domains: set[str],
    ) -> None:
        """Write the chunk's new organizations, merge what the next look-ups probe and analyze
        the tables whose statistics count far fewer rows than written (ADR 77); the rest
        (:meth:`_created_tail`) is left for the next chunk to start."""
        fresh: list[_New] = []
        for parsed, line in creating:
            draft = _draft_of(parsed)
            blocked = draft.inn in blocked_inns or any(
                email_domain(e) in blocked_domains for e in draft.emails
            )
            new = _New(uuid.uuid4(), draft, storage_values(draft), blocked)
            fresh.append(new)
            line.organization_id, line.action = new.id, RowAction.CREATED
            self.report.count(line)
        now = await self._now()  # the organizations' timestamps: the database's default, now()
        # their audit entries, events and state records are built while they are written
        records = (
            None
            if self.discarding
            else asyncio.ensure_future(
                asyncio.to_thread(
                    self._creation_records,
                    fresh,
                    await next_revisions(self.session, len(fresh)),
                    now,
                )
            )
        )
        try:
            subject = self.principal.subject
            await Copy.of(
                organizations,
                [
                    {
                        "id": new.id,
                        **new.values,
                        "version": 1,
                        "created_by": subject,
                        "updated_by": subject,
                    }
                    for new in fresh
                ],
            ).write(self.session)
            await self.session.execute(queries.MERGE_PENDING, {"probed": True})
            self.written.update(d for new in fresh for d in new.draft.directions)
            await queries.analyze_undercounted(self.session, self.report.created, self.written)
        except BaseException:
            if records is not None:
                await _settled(records)
            raise
        self.tail = functools.partial(
            self._created_tail, rows, creating, lines, fresh, records, now, counts_of(self.report)
        )

    async def _created_tail(
        self,
        rows: list[ParsedRow],
        creating: list[tuple[ParsedRow, RowReport]],
        lines: list[RowReport],
        fresh: list[_New],
        records: asyncio.Future[tuple[Copy, Copy]] | None,
        now: datetime,
        counts: ImportCounts,
    ) -> None:
        """The rest of a chunk's creations: their similar names, the other GIN merges, their
        audit entries, events and state records, the blocked ones announced, the report (the
        created rows were counted when written)."""
        try:
            candidates = await self._candidates([p for p, _ in creating], [new.id for new in fresh])
            await self.session.execute(queries.MERGE_PENDING, {"probed": False})
        finally:
            if records is not None:
                await _settled(records)
        for parsed, line in creating:
            line.candidates = candidates.get(parsed.number, [])
            if line.candidates:
                line.warnings.append(
                    RowProblem(
                        field="legal_name",
                        kind="similar_name",
                        message="organizations with a similar name exist; review before merging",
                    )
                )
            self._keep(line, lines)
        reported = asyncio.ensure_future(self._report(rows, lines, counts))  # own connection
        try:
            if records is not None and self.discarding:
                records.exception()  # retrieved: nothing of them is written
            elif records is not None:
                audit, staged = records.result()
                await audit.write(self.session)
                await staged.write(self.session)
                await self.runtime.outbox.signal(self.session)
                for new in fresh:
                    if new.blocked:
                        org = _organization(
                            new.draft,
                            id=new.id,
                            version=1,
                            blocked=True,
                            created_at=now,
                            updated_at=now,
                        )
                        async with legacy_work(self.session, self.runtime, self.principal) as uow:
                            await register.announce_organization(uow, org, was_blocked=False)
        except BaseException:
            await _settled(reported)
            raise
        await reported

    async def _merged_and_reported(
        self, rows: list[ParsedRow], lines: list[RowReport], counts: ImportCounts
    ) -> None:
        """The tail of a chunk that created nothing: the other GIN merges (its updates add to
        those lists too), its report."""
        await self.session.execute(queries.MERGE_PENDING, {"probed": False})
        await self._report(rows, lines, counts)

    async def _report(
        self, rows: list[ParsedRow], lines: list[RowReport], counts: ImportCounts
    ) -> None:
        """The chunk's report lines kept, in row order, and the counts at its end, to
        ``on_chunk``."""
        await self.on_chunk(rows, sorted(lines, key=lambda line: line.row), counts)

    async def _candidates(
        self, rows: list[ParsedRow], created: list[uuid.UUID]
    ) -> dict[int, list[Candidate]]:
        """Up to MAX_CANDIDATES live organizations the caller sees per new row whose name is
        similar (``similarity`` ≥ NAME_SIMILARITY), the most similar first."""
        result: dict[int, list[Candidate]] = {}
        sees_all = self.principal.sees_all_directions
        for with_inn in (True, False):
            part = [
                (pos, parsed)
                for pos, parsed in enumerate(rows, start=1)
                if bool(parsed.inn) is with_inn
            ]
            if not part:
                continue
            params: dict[str, Any] = {
                "nums": [parsed.number for _, parsed in part],
                "positions": [pos for pos, _ in part],
                "created": created,
                "threshold": queries.NAME_SIMILARITY,
                "limit": queries.MAX_CANDIDATES,
            }
            if not sees_all:
                params["dirs"] = sorted(self.principal.directions)
            sql = queries.similar_names(with_inn, sees_all)
            for num, org_id, name, sim in (await self.session.execute(sql, params)).all():
                result.setdefault(num, []).append(
                    Candidate(organization_id=org_id, legal_name=name, similarity=round(sim, 3))
                )
        return result

    def _audit_records(self, entries: list[tuple[uuid.UUID, str, int, dict[str, Any]]]) -> Copy:
        p = self.principal
        correlation = current_correlation_id()
        return Copy.of(
            audit_log,
            [
                {
                    "entity_kind": "organization",
                    "entity_id": entity_id,
                    "version": version,
                    "action": action,
                    "actor_subject": p.subject,
                    "actor_kind": p.kind,
                    "actor_name": p.name,
                    "correlation_id": correlation,
                    "changes": changes,
                    "note": "import",
                }
                for entity_id, action, version, changes in entries
            ],
        )

    def _creation_records(
        self, fresh: list[_New], revisions: list[int], now: datetime
    ) -> tuple[Copy, Copy]:
        """The audit entries and the outbox rows (events, then state records) of new
        organizations, from their storage values without a model each (ADR 70; built in a
        worker thread while the organizations are written)."""
        outbox = self.runtime.outbox
        audit = self._audit_records(
            [
                (
                    new.id,
                    "created",
                    1,
                    creation_changes_of(new.values, new.values["attributes"]),
                )
                for new in fresh
            ]
        )
        events = outbox.payload_rows(
            "directory.organization.created",
            OrganizationCreatedV2,
            (
                (
                    str(new.id),
                    new.draft.directions,
                    created_payload(new.id, new.values, new.blocked),
                )
                for new in fresh
            ),
            actor=self.actor,
        )
        states = outbox.payload_rows(
            "directory.organization.state",
            OrganizationState,
            (
                (
                    str(new.id),
                    new.draft.directions,
                    created_state_payload(new.id, new.values, new.blocked, revision, now),
                )
                for new, revision in zip(fresh, revisions, strict=True)
            ),
        )
        return audit, Copy.of(outbox.table, [*events, *states])

    async def _now(self) -> datetime:
        """The transaction's ``now()``: what the organizations' timestamps were written as."""
        if self.now is None:
            self.now = await self.session.scalar(select(func.now()))
            assert self.now is not None
        return self.now

    async def _stage(
        self, audit: Copy, events: list[Envelope], written: list[Organization]
    ) -> None:
        """Write audit entries (a COPY), then the events and the state records of the
        organizations as written (ADR 18, built without reading them back: ADR 61), one COPY;
        the relay is woken at the commit."""
        outbox = self.runtime.outbox
        await audit.write(self.session)
        states = await written_organization_states(self.session, outbox, written)
        await outbox.copy_with_state(self.session, events, states)

    def _finish(self, line: RowReport, lines: list[RowReport]) -> None:
        """Count the row's line, and keep it in its chunk's ``lines`` when the report shows it."""
        if line.errors:
            line.action = RowAction.SKIPPED
            line.organization_id = None
            self.bad += 1
        self.report.count(line)
        self._keep(line, lines)

    def _keep(self, line: RowReport, lines: list[RowReport]) -> None:
        """Keep a counted line in its chunk's ``lines`` when the report shows it."""
        keep = self.report.mode is ImportMode.DRY_RUN or line.action is not RowAction.CREATED
        if keep or line.warnings or line.candidates:
            lines.append(line)


async def _settled(future: asyncio.Future[Any]) -> None:
    """Wait for ``future`` to end (a second cancel does not cut the wait short), its error
    retrieved: after an error elsewhere, that first error is the one raised; else whoever needs
    its result asks for it."""
    while not future.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait([future])
    if not future.cancelled():
        future.exception()


def _draft_of(parsed: ParsedRow) -> OrganizationFields:
    """The fields of a row being created (it has them)."""
    assert parsed.draft is not None
    return parsed.draft


def _unwanted() -> RowProblem:
    return RowProblem(message="matches the unwanted counterparty register", kind="unwanted")


def _organization(fields: OrganizationFields, **identity: Any) -> Organization:
    """An organization from validated fields and its identity, without validating again."""
    return Organization.model_construct(**dict(fields), **identity)


class ImportRejected(Exception):
    """An all-or-nothing import with bad rows: nothing was written."""

    def __init__(self, bad: int, report: ImportReport) -> None:
        super().__init__(f"{bad} of {report.rows} rows cannot be imported; nothing was written.")
        self.bad, self.report = bad, report


class _Rollback(Exception):
    pass


class ChunkImporter(Protocol):
    """Matches and writes one kind of record a chunk of rows at a time, in the import's
    transaction (organizations' ``_Importer``, persons' ``_PersonImporter``)."""

    bad: int
    """The rows refused so far."""

    async def chunk(self, rows: list[Any]) -> None: ...

    async def flush(self) -> None:
        """Write what the last chunk left to write (after it, before the import ends)."""


Start = Callable[[AsyncSession, ImportReport], Awaitable[tuple[ChunkImporter, dict[str, Any]]]]
"""Makes an import's importer in its transaction, with the ReadPlan fields of its kind."""
StartOf = Callable[[ServiceRuntime, Principal, ChunkDone, bool], Start]
"""An import kind's Start, given the runtime, the principal, ``on_chunk`` and ``replace_lists``."""
RunImport = Callable[..., Awaitable[ImportReport]]


def import_runner(start_of: StartOf) -> RunImport:
    """The function running one import of a kind (``run_import``, ``run_persons_import``)."""

    async def run(
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
        """Run one import in one transaction (committed unless a dry run or rejected); the
        counts. Writing imports run one at a time (IMPORT_LOCK, taken before the first row is
        matched). A reader process reads the file, the next chunk while the current one is
        written.

        Raises TabularError for a file that cannot be read (even half-way: nothing is written)
        and ImportRejected for an all-or-nothing import with bad rows.
        """
        report = report or ImportReport(mode=mode)
        start = start_of(runtime, principal, on_chunk, replace_lists)
        importer: ChunkImporter | None = None
        settings = runtime.settings
        try:
            async with runtime.sessions() as session, session.begin():
                similarity = {"similarity": str(queries.NAME_SIMILARITY)}
                await session.execute(queries.IMPORT_SETTINGS, similarity)
                importer, fields = await start(session, report)
                plan = ReadPlan(
                    filename=filename,
                    overrides=overrides,
                    directions=directions,
                    max_rows=max_rows,
                    too_many=too_many,
                    chunk_rows=int(getattr(settings, "import_chunk_rows", 2500)),
                    **{"labels": {}, **fields},
                )
                async with RowReader(readers(settings), file, plan) as reader:
                    assert reader.opening is not None
                    if on_open is not None:
                        await on_open(reader.opening)
                    if mode is not ImportMode.DRY_RUN:
                        await session.execute(queries.IMPORT_LOCK)
                    # the next chunk is received while the current one is written
                    following = asyncio.ensure_future(reader.chunk())
                    try:
                        while rows := await following:
                            following = asyncio.ensure_future(reader.chunk())
                            await importer.chunk(rows)
                        await importer.flush()
                    finally:
                        if not following.cancel() and not following.cancelled():
                            following.exception()  # retrieved: the first error is raised
                bad = importer.bad
                if mode is ImportMode.DRY_RUN or (mode is ImportMode.ALL_OR_NOTHING and bad):
                    raise _Rollback
                if before_commit is not None:
                    await before_commit(session, report)
        except _Rollback:
            if mode is ImportMode.ALL_OR_NOTHING:
                assert importer is not None
                raise ImportRejected(importer.bad, report) from None
        return report

    return run


def _organizations(
    runtime: ServiceRuntime, principal: Principal, on_chunk: ChunkDone, replace_lists: bool
) -> Start:
    async def start(
        session: AsyncSession, report: ImportReport
    ) -> tuple[_Importer, dict[str, Any]]:
        definitions = await definitions_for(session, EntityKind.ORGANIZATION)
        importer = _Importer(session, runtime, principal, definitions, report, on_chunk)
        importer.replace_lists = replace_lists
        return importer, {
            "labels": {k: d.label for k, d in definitions.items() if not d.archived},
            "archived": {k: d.label for k, d in definitions.items() if d.archived},
        }

    return start


run_import = import_runner(_organizations)
"""Run one import of organizations."""


# --- jobs (ADR 41) ----------------------------------------------------------------------------

FILE_PART = 1 << 20
"""Bytes of the uploaded file per stored part."""


def job_of(row: Any, lang: str = messages.EN) -> ImportJob:
    """A job as the API shows it, its problem's detail in the language."""
    job = ImportJob.model_validate(row, from_attributes=True)
    if job.problem and isinstance(job.problem.get("detail"), str):
        job.problem["detail"] = messages.detail_in(job.problem["detail"], lang)
    return job


async def submit(
    runtime: ServiceRuntime,
    principal: Principal,
    upload: UploadFile,
    *,
    mode: ImportMode,
    mapping: str | None,
    directions: str | None,
    replace_lists: bool = False,
    kind: ImportKind = ImportKind.ORGANIZATION,
) -> ImportJob:
    """Store the file and queue its import of ``kind`` (a 422 problem for a mapping that is no
    mapping); a process running jobs takes it up (``jobs.JobRunner``)."""
    try:
        overrides = parse_mapping(mapping)
    except ValueError as exc:
        raise ProblemError(422, "Invalid Mapping", str(exc), kind="invalid-mapping") from None
    defaults = (
        [d.strip() for d in directions.split(",") if d.strip()]
        if directions
        else sorted(principal.directions)
    )
    if not defaults or not principal.can_see(defaults):
        raise ProblemError(
            403, "Forbidden", "You may only import into your own directions.", kind="forbidden"
        )
    job_id = uuid.uuid4()
    async with runtime.sessions() as session, session.begin():
        size = part = 0
        await queries.insert_job(
            session,
            {
                "id": job_id,
                "state": JobState.QUEUED,
                "mode": mode,
                "kind": kind,
                "filename": upload.filename,
                "directions": defaults,
                "overrides": overrides,
                "replace_lists": replace_lists,
                "principal": principal.model_dump(mode="json", exclude={"expires_at"}),
                "created_by": principal.subject,
                "file_bytes": 0,
                "counts": ImportCounts().model_dump(),
            },
        )
        while data := await upload.read(FILE_PART):
            await queries.insert_file_part(session, job_id, part, data)
            size, part = size + len(data), part + 1
        await queries.set_job(session, job_id, None, file_bytes=size)
        row = await queries.visible_job(session, principal, job_id)
    return job_of(row)


async def get_job(
    runtime: ServiceRuntime, principal: Principal, job_id: uuid.UUID, lang: str = messages.EN
) -> ImportJob:
    async with runtime.sessions() as session:
        row = await queries.visible_job(session, principal, job_id)
    if row is None:
        raise NotFound("No such import.")
    return job_of(row, lang)


async def cancel_job(
    runtime: ServiceRuntime, principal: Principal, job_id: uuid.UUID, lang: str = messages.EN
) -> ImportJob:
    """Cancel a queued job at once, a running one at its next chunk (its transaction rolled
    back: nothing of it is written). Ended jobs are left as they are."""
    async with runtime.sessions() as session, session.begin():
        row = await queries.visible_job(session, principal, job_id, for_update=True)
        if row is None:
            raise NotFound("No such import.")
        if row.created_by != principal.subject and not may_write(principal, row.directions):
            raise ProblemError(
                403, "Forbidden", "You may not cancel this import.", kind="forbidden"
            )
        if row.state == JobState.QUEUED:
            await queries.finish_job(session, job_id, None, state=JobState.CANCELLED)
        elif row.state == JobState.RUNNING:
            await queries.set_job(session, job_id, None, cancel_requested=True)
        row = await queries.visible_job(session, principal, job_id)
    return job_of(row, lang)


def _cursor(after: str | None) -> tuple[int, int]:
    if not after:
        return (-1, 0)
    try:
        rank, row = (int(part) for part in after.split(":", 1))
    except ValueError:
        raise ProblemError(422, "Invalid Cursor", "Not a cursor of this report.") from None
    return (rank, row)


async def report_page(
    runtime: ServiceRuntime,
    principal: Principal,
    job_id: uuid.UUID,
    *,
    after: str | None,
    limit: int,
    lang: str = messages.EN,
) -> ReportPage:
    """A page of the job's report: rows with errors first, then the others, by row; the
    messages in the language."""
    cursor = _cursor(after)
    async with runtime.sessions() as session:
        if await queries.visible_job(session, principal, job_id) is None:
            raise NotFound("No such import.")
        found = await queries.report_lines(session, job_id, cursor, limit + 1)
    items = [messages.line_in(RowReport.model_validate(line.line), lang) for line in found[:limit]]
    more = len(found) > limit
    last = found[limit - 1] if more else None
    return ReportPage(items=items, next_cursor=f"{last.rank}:{last.row}" if last else None)


REASON_HEADER = "Причина / Reason"


def _reason(line: RowReport) -> str:
    return "; ".join(
        f"{problem.field}: {problem.message}" if problem.field else problem.message
        for problem in line.errors
    )


def _append_rows(sheet: XlsxStream, rows: list[list[Any]]) -> None:
    for row in rows:
        sheet.append(row)


async def failed_rows_xlsx(
    runtime: ServiceRuntime, principal: Principal, job_id: uuid.UUID, lang: str = messages.EN
) -> IO[bytes]:
    """The rows with errors as read from the file, its header above them, a reason column
    after them in the language (an .xlsx to correct and import again)."""
    async with runtime.sessions() as session:
        job = await queries.visible_job(session, principal, job_id)
        if job is None:
            raise NotFound("No such import.")
        header = [cell or "" for cell in (job.header or [])]
        sheet = XlsxStream(["Строка / Row", *header, REASON_HEADER], "Errors")
        result = await queries.failed_lines(session, job_id)
        async for batch in result.partitions(1000):
            rows = []
            for found in batch:
                line = messages.line_in(RowReport.model_validate(found.line), lang)
                cells = list(found.cells or [])
                cells += [None] * (len(header) - len(cells))
                rows.append([line.row, *cells, _reason(line)])
            await asyncio.to_thread(_append_rows, sheet, rows)
    return await asyncio.to_thread(sheet.finish)
