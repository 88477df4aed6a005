"""Import of organizations from .xlsx or CSV: dry run, all-or-nothing, or the valid rows.

The file is read in a worker thread a chunk of rows at a time (openpyxl read-only, csv), each
chunk matched and written inside one transaction: a dry run rolls it back, all-or-nothing rolls
it back at the first bad row's end of file (422 with the report), valid-rows commits the good
rows. Duplicates: INN first, then a normalized e-mail or phone (both update the existing
record); otherwise similar names (pg_trgm) are reported for review and the row is created.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Annotated, Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.auth.principal import Principal
from clientele_shared.http.problems import ProblemError
from clientele_shared.observability import current_correlation_id
from fastapi import APIRouter, Form, UploadFile
from sqlalchemy import ARRAY, Integer, String, Text, bindparam, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.api.attributes import definitions_for
from clientele_directory.api.blocking import announce_organization
from clientele_directory.api.common import Runtime, actor_of
from clientele_directory.api.organizations import load_organization, organization_select
from clientele_directory.domain.attributes import (
    AttributeDefinition,
    AttributeErrors,
    EntityKind,
    apply_attribute_patch,
)
from clientele_directory.domain.common import email_domain
from clientele_directory.domain.imports import (
    Candidate,
    ImportMode,
    ImportReport,
    ParsedRow,
    RowAction,
    RowProblem,
    RowReport,
    is_blank,
    map_headers,
    parse_mapping,
    parse_row,
    patch_of,
)
from clientele_directory.domain.organizations import (
    Organization,
    OrganizationPatch,
    PatchRejected,
    apply_patch,
    changes_between,
    created_changes,
    moved_directions,
    storage_values,
)
from clientele_directory.events import organization_created, organization_updated
from clientele_directory.store import audit_log, employees, organizations, unwanted_register
from clientele_directory.tabular import TabularError, read_rows

router = APIRouter(prefix="/v1/organizations", tags=["import"])
CHUNK_ROWS = 1000
NAME_SIMILARITY = 0.5
MAX_CANDIDATES = 3

_PHONE_MATCH = text(
    "EXISTS (SELECT 1 FROM jsonb_array_elements(organizations.phones) AS p "
    "WHERE p->>'number' = ANY(:numbers))"
).bindparams(bindparam("numbers", type_=ARRAY(Text)))


def _unreadable(detail: str) -> ProblemError:
    return ProblemError(
        422, "Unreadable File", f"The file cannot be read: {detail}.", kind="unreadable-file"
    )


class _Rows:
    """The file's data rows, parsed a chunk at a time (call :meth:`chunk` in a worker thread)."""

    def __init__(
        self,
        rows: Iterator[list[str | None]],
        mapping: dict[int, str],
        directions: list[str],
        max_rows: int,
    ) -> None:
        self.rows, self.mapping, self.directions, self.max_rows = (
            rows,
            mapping,
            directions,
            max_rows,
        )
        self.number = 1

    def chunk(self) -> list[ParsedRow]:
        parsed: list[ParsedRow] = []
        for row in self.rows:
            self.number += 1
            if is_blank(row):
                continue
            if self.number > self.max_rows + 1:
                raise TabularError(f"more than {self.max_rows} rows")
            parsed.append(parse_row(self.number, self.mapping, row, self.directions))
            if len(parsed) >= CHUNK_ROWS:
                break
        return parsed


def _open(
    file: UploadFile,
    overrides: dict[str, str | None],
    labels: dict[str, str],
    directions: list[str],
    max_rows: int,
) -> _Rows:
    rows = read_rows(file.file, file.filename)
    header = next(rows, None)
    if header is None:
        raise TabularError("the file is empty")
    mapping, problems = map_headers(header, labels, overrides)
    if problems:
        raise TabularError("; ".join(problems))
    if not {"legal_name", "inn"} & set(mapping.values()):
        raise TabularError(
            "no column names the organization (name it «Наименование»/«legal_name» or «ИНН»)"
        )
    return _Rows(rows, mapping, directions, max_rows)


class _Importer:
    """Matches and writes the chunks of one import inside the caller's transaction."""

    def __init__(
        self,
        session: AsyncSession,
        runtime: Any,
        principal: Principal,
        definitions: dict[str, AttributeDefinition],
        report: ImportReport,
    ) -> None:
        self.session, self.runtime, self.principal = session, runtime, principal
        self.definitions, self.report = definitions, report
        self.seen: dict[str, int] = {}  # inn / email / phone -> the file row that gave it
        self.bad = 0

    def _writable(self, directions: list[str] | set[str]) -> bool:
        p = self.principal
        return p.sees_all_directions or set(directions) <= set(p.directions)

    async def _existing(self, rows: list[ParsedRow]) -> tuple[dict[str, list[Any]], ...]:
        inns = sorted({r.inn for r in rows if r.inn})
        emails = sorted({e for r in rows for e in r.emails()})
        phones = sorted({p for r in rows for p in r.phones()})
        alive = [
            organizations.c.deleted_at.is_(None),
            visible_to(self.principal, organizations.c.directions),
        ]
        by_inn: dict[str, list[Any]] = {}
        by_email: dict[str, list[Any]] = {}
        by_phone: dict[str, list[Any]] = {}
        if inns:
            stmt = (
                select(organizations.c.id, organizations.c.inn)
                .where(*alive, organizations.c.inn.in_(inns))
                .order_by(organizations.c.created_at, organizations.c.id)
            )
            for row in (await self.session.execute(stmt)).all():
                by_inn.setdefault(row.inn, []).append(row.id)
        if emails or phones:
            contacts = (
                select(
                    organizations.c.id,
                    organizations.c.inn,
                    organizations.c.emails,
                    organizations.c.phones,
                )
                .where(
                    *alive,
                    organizations.c.emails.overlap(emails)
                    | _PHONE_MATCH.bindparams(numbers=phones),
                )
                .order_by(organizations.c.created_at, organizations.c.id)
            )
            wanted_e, wanted_p = set(emails), set(phones)
            for found in (await self.session.execute(contacts)).all():
                for e in set(found.emails) & wanted_e:
                    by_email.setdefault(e, []).append((found.id, found.inn))
                for p in {ph["number"] for ph in found.phones} & wanted_p:
                    by_phone.setdefault(p, []).append((found.id, found.inn))
        return by_inn, by_email, by_phone

    async def _candidates(self, rows: list[ParsedRow]) -> dict[int, list[Candidate]]:
        """Up to MAX_CANDIDATES live, visible organizations per row whose name is similar: the
        nearest by trigram distance (GiST index on the folded name, migration 0010), kept when
        their similarity reaches NAME_SIMILARITY."""
        named = [(r.number, r.draft.legal_name) for r in rows if r.draft]
        if not named:
            return {}
        sees_all = self.principal.sees_all_directions
        sql = text(
            "SELECT n.num, c.id, c.legal_name, c.sim FROM unnest(:nums, :names) AS n(num, name)"
            " CROSS JOIN LATERAL (SELECT o.id, o.legal_name,"
            " similarity(directory_fold(o.legal_name), directory_fold(n.name)) AS sim"
            " FROM organizations o WHERE o.deleted_at IS NULL"
            " AND (CAST(:all AS boolean) OR o.directions && :dirs)"
            " ORDER BY directory_fold(o.legal_name) <-> directory_fold(n.name)"
            " LIMIT :limit) AS c WHERE c.sim >= :threshold ORDER BY n.num, c.sim DESC"
        ).bindparams(
            bindparam("nums", type_=ARRAY(Integer)),
            bindparam("names", type_=ARRAY(Text)),
            bindparam("dirs", type_=ARRAY(String(64))),
        )
        params: dict[str, Any] = {
            "nums": [n for n, _ in named],
            "names": [name for _, name in named],
            "threshold": NAME_SIMILARITY,
            "limit": MAX_CANDIDATES,
            "all": sees_all,
            "dirs": sorted(self.principal.directions),
        }
        found = (await self.session.execute(sql, params)).all()
        result: dict[int, list[Candidate]] = {}
        for num, org_id, name, sim in found:
            result.setdefault(num, []).append(
                Candidate(organization_id=org_id, legal_name=name, similarity=round(sim, 3))
            )
        return result

    async def _register(self, rows: list[ParsedRow]) -> tuple[set[str], set[str]]:
        inns = sorted({r.inn for r in rows if r.inn})
        domains = sorted({email_domain(e) for r in rows for e in r.emails()})
        if not inns and not domains:
            return set(), set()
        found = (
            await self.session.execute(
                select(unwanted_register.c.inn, unwanted_register.c.email_domain).where(
                    unwanted_register.c.removed_at.is_(None),
                    unwanted_register.c.inn.in_(inns)
                    | unwanted_register.c.email_domain.in_(domains),
                )
            )
        ).all()
        return {r.inn for r in found if r.inn}, {r.email_domain for r in found if r.email_domain}

    async def _employees(self, rows: list[ParsedRow]) -> set[uuid.UUID]:
        ids = {r.draft.responsible_employee_id for r in rows if r.draft}
        ids.discard(None)
        if not ids:
            return set()
        found = await self.session.scalars(
            select(employees.c.id).where(employees.c.id.in_(ids), employees.c.active)
        )
        return set(found)

    def _in_file(self, parsed: ParsedRow) -> RowProblem | None:
        keys = (
            [("inn", parsed.inn)]
            if parsed.inn
            else [
                *(("email", e) for e in parsed.emails()),
                *(("phone", p) for p in parsed.phones()),
            ]
        )
        for kind, key in keys:
            assert key is not None
            if (earlier := self.seen.get(f"{kind}:{key}")) is not None:
                return RowProblem(
                    field=kind,
                    message=f"the same {kind} as row {earlier}",
                    kind="duplicate_in_file",
                )
        for kind, key in keys:
            self.seen[f"{kind}:{key}"] = parsed.number
        return None

    async def chunk(self, rows: list[ParsedRow]) -> None:
        by_inn, by_email, by_phone = await self._existing(rows)
        blocked_inns, blocked_domains = await self._register(rows)
        active_employees = await self._employees(rows)
        creating: list[tuple[ParsedRow, RowReport]] = []
        for parsed in rows:
            line = RowReport(row=parsed.number, action=RowAction.SKIPPED, errors=parsed.errors)
            draft = parsed.draft
            if draft is not None:
                if draft.inn in blocked_inns or any(
                    email_domain(e) in blocked_domains for e in draft.emails
                ):
                    line.warnings.append(
                        RowProblem(
                            message="matches the unwanted counterparty register", kind="unwanted"
                        )
                    )
                if (dup := self._in_file(parsed)) is not None:
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
                self._finish(line)
                continue
            target, matched = self._match(parsed, by_inn, by_email, by_phone, line)
            if line.errors:
                self._finish(line)
            elif target is None:
                if not self._writable(draft.directions):
                    line.errors.append(
                        RowProblem(
                            field="directions",
                            message="you may only import into your directions",
                            kind="forbidden_direction",
                        )
                    )
                    self._finish(line)
                    continue
                try:
                    values = apply_attribute_patch(
                        self.definitions, {}, parsed.attributes, creating=True
                    )
                except AttributeErrors as exc:
                    line.errors.extend(
                        RowProblem(
                            field=".".join(str(p) for p in e["loc"]),
                            message=e["msg"],
                            kind=e.get("type", "attribute"),
                        )
                        for e in exc.errors
                    )
                    self._finish(line)
                    continue
                parsed.draft = draft.model_copy(update={"attributes": values})
                creating.append((parsed, line))
            else:
                line.matched_by = matched
                await self._update(parsed, target, line)
                self._finish(line)
        if creating:
            candidates = await self._candidates([p for p, _ in creating])
            await self._create(creating, candidates)

    def _match(
        self,
        parsed: ParsedRow,
        by_inn: dict[str, list[Any]],
        by_email: dict[str, list[Any]],
        by_phone: dict[str, list[Any]],
        line: RowReport,
    ) -> tuple[uuid.UUID | None, str | None]:
        def other_company(inn: str | None) -> bool:  # a contact shared with another INN
            return bool(inn and parsed.inn and inn != parsed.inn)

        tries: list[tuple[str, list[Any]]] = []
        if parsed.inn:
            tries.append(("inn", by_inn.get(parsed.inn, [])))
        emails = {
            i for e in parsed.emails() for i, inn in by_email.get(e, []) if not other_company(inn)
        }
        tries.append(("email", sorted(emails, key=str)))
        phones = {
            i for p in parsed.phones() for i, inn in by_phone.get(p, []) if not other_company(inn)
        }
        tries.append(("phone", sorted(phones, key=str)))
        for kind, ids in tries:
            unique = list(dict.fromkeys(ids))
            if len(unique) > 1:
                line.errors.append(
                    RowProblem(
                        field=kind,
                        kind="ambiguous",
                        message=f"the {kind} matches {len(unique)} organizations; merge them first",
                    )
                )
                return None, None
            if unique:
                return unique[0], kind
        return None, None

    async def _update(self, parsed: ParsedRow, org_id: uuid.UUID, line: RowReport) -> None:
        line.organization_id = org_id
        current = await load_organization(self.session, org_id, for_update=True)
        assert current is not None
        if current.blocked and not any(w.kind == "unwanted" for w in line.warnings):
            line.warnings.append(
                RowProblem(message="matches the unwanted counterparty register", kind="unwanted")
            )
        given = patch_of(parsed)
        try:
            patched = apply_patch(current, OrganizationPatch(**given))
            values = apply_attribute_patch(
                self.definitions, current.attributes, parsed.attributes or None, creating=False
            )
        except PatchRejected as exc:
            line.errors.extend(
                RowProblem(field=".".join(map(str, e["loc"])), message=e["msg"]) for e in exc.errors
            )
            return
        except AttributeErrors as exc:
            line.errors.extend(
                RowProblem(field=".".join(map(str, e["loc"])), message=e["msg"]) for e in exc.errors
            )
            return
        patched = patched.model_copy(update={"attributes": values})
        changes = changes_between(current, patched)
        if not changes:
            line.action = RowAction.UNCHANGED
            return
        if not self._writable(moved_directions(current.directions, patched.directions)):
            line.errors.append(
                RowProblem(
                    field="directions",
                    message="you may only move records into your directions",
                    kind="forbidden_direction",
                )
            )
            return
        line.action = RowAction.UPDATED
        version = current.version + 1
        await self.session.execute(
            update(organizations)
            .where(organizations.c.id == org_id)
            .values(
                **storage_values(patched),
                version=version,
                updated_by=self.principal.subject,
                updated_at=func.now(),
            )
        )
        org = await load_organization(self.session, org_id)
        assert org is not None
        await self._audit([(org_id, "updated", version, changes)])
        await self.runtime.outbox.add(
            self.session,
            organization_updated(
                self.runtime.outbox,
                org,
                changes,
                actor_of(self.principal),
                previous_directions=current.directions,
            ),
        )
        await announce_organization(
            self.session, self.runtime, self.principal, org, was_blocked=current.blocked
        )

    async def _create(
        self, creating: list[tuple[ParsedRow, RowReport]], candidates: dict[int, list[Candidate]]
    ) -> None:
        ids: list[uuid.UUID] = []
        values: list[dict[str, Any]] = []
        for parsed, line in creating:
            assert parsed.draft is not None
            org_id = uuid.uuid4()
            ids.append(org_id)
            line.organization_id, line.action = org_id, RowAction.CREATED
            line.candidates = candidates.get(parsed.number, [])
            if line.candidates:
                line.warnings.append(
                    RowProblem(
                        field="legal_name",
                        kind="similar_name",
                        message="organizations with a similar name exist; review before merging",
                    )
                )
            values.append(
                {
                    "id": org_id,
                    **storage_values(parsed.draft),
                    "version": 1,
                    "created_by": self.principal.subject,
                    "updated_by": self.principal.subject,
                }
            )
            self._finish(line)
        await self.session.execute(insert(organizations), values)
        rows = (
            await self.session.execute(organization_select().where(organizations.c.id.in_(ids)))
        ).all()
        created = [Organization.model_validate(r, from_attributes=True) for r in rows]
        await self._audit([(o.id, "created", 1, created_changes(o)) for o in created])
        actor = actor_of(self.principal)
        for org in created:
            await self.runtime.outbox.add(
                self.session, organization_created(self.runtime.outbox, org, actor)
            )
            if org.blocked:
                await announce_organization(
                    self.session, self.runtime, self.principal, org, was_blocked=False
                )

    async def _audit(self, entries: list[tuple[uuid.UUID, str, int, dict[str, Any]]]) -> None:
        p = self.principal
        await self.session.execute(
            insert(audit_log),
            [
                {
                    "entity_kind": "organization",
                    "entity_id": entity_id,
                    "version": version,
                    "action": action,
                    "actor_subject": p.subject,
                    "actor_kind": p.kind,
                    "actor_name": p.name,
                    "correlation_id": current_correlation_id(),
                    "changes": changes,
                    "note": "import",
                }
                for entity_id, action, version, changes in entries
            ],
        )

    def _finish(self, line: RowReport) -> None:
        if line.errors:
            line.action = RowAction.SKIPPED
            line.organization_id = None
            self.bad += 1
        self.report.count(line)
        keep = self.report.mode is ImportMode.DRY_RUN or line.action is not RowAction.CREATED
        if keep or line.warnings or line.candidates:
            self.report.report.append(line)


class _Rollback(Exception):
    pass


@router.post("/import")
async def import_organizations(
    file: UploadFile,
    principal: CurrentPrincipal,
    runtime: Runtime,
    mode: Annotated[ImportMode, Form(description="dry_run, all_or_nothing or valid_rows")] = (
        ImportMode.DRY_RUN
    ),
    mapping: Annotated[
        str | None,
        Form(description='JSON {"header as written": "field" or null}; wins over detection'),
    ] = None,
    directions: Annotated[
        str | None,
        Form(description="comma-separated directions of rows that name none (default: yours)"),
    ] = None,
) -> ImportReport:
    """Import organizations from an .xlsx (first sheet) or CSV file with a header row.

    A dry run reports per row what would be created, updated, left unchanged or skipped and
    why, and writes nothing. ``all_or_nothing`` writes every row or none (422 with the report
    when any row is bad); ``valid_rows`` writes the good rows and reports the rest. Updates and
    creations are audited and published like the API's. A broken file is a 422 problem.
    """
    try:
        overrides = parse_mapping(mapping)
    except ValueError as exc:
        raise ProblemError(422, "Invalid Mapping", str(exc), kind="invalid-mapping") from None
    defaults = (
        [d.strip() for d in directions.split(",") if d.strip()]
        if directions
        else sorted(principal.directions)
    )
    max_rows = int(getattr(runtime.settings, "import_max_rows", 200_000))
    report = ImportReport(mode=mode)
    try:
        async with runtime.sessions() as session, session.begin():
            definitions = await definitions_for(session, EntityKind.ORGANIZATION)
            labels = {k: d.label for k, d in definitions.items() if not d.archived}
            importer = _Importer(session, runtime, principal, definitions, report)
            try:
                reader = await asyncio.to_thread(_open, file, overrides, labels, defaults, max_rows)
                while rows := await asyncio.to_thread(reader.chunk):
                    await importer.chunk(rows)
            except TabularError as exc:
                raise _unreadable(str(exc)) from None
            if mode is ImportMode.DRY_RUN:
                raise _Rollback
            if mode is ImportMode.ALL_OR_NOTHING and importer.bad:
                raise _Rollback
    except _Rollback:
        if mode is ImportMode.ALL_OR_NOTHING:
            raise ProblemError(
                422,
                "Import Rejected",
                f"{importer.bad} of {report.rows} rows cannot be imported; nothing was written.",
                kind="import-rejected",
                **report.model_dump(mode="json"),
            ) from None
    return report
