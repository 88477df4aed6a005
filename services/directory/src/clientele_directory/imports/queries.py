"""SQL of imports: the look-ups of a chunk of rows and the writes that are no COPY."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from sqlalchemy import (
    ARRAY,
    Integer,
    String,
    Table,
    Text,
    Uuid,
    any_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from clientele_directory.blocking import organization_blocked_expr
from clientele_directory.employees.queries import employee_visible
from clientele_directory.organizations.queries import organization_select
from clientele_directory.organizations.rules import Organization
from clientele_directory.tables import (
    employees,
    import_job_files,
    import_job_lines,
    import_jobs,
    organizations,
    persons,
    unwanted_register,
)
from clientele_directory.values import STORED
from clientele_directory.visibility import person_visible

NAME_SIMILARITY = 0.5
MAX_CANDIDATES = 3

_CANDIDATES = """
WITH n AS MATERIALIZED (
    SELECT u.num, u.pos, r.name_key AS key
    FROM unnest(:nums, :positions) AS u(num, pos)
    CROSS JOIN LATERAL (SELECT r.name_key FROM organizations r
        WHERE r.id = (CAST(:created AS uuid[]))[u.pos] OFFSET 0) AS r
)
SELECT n.num, c.id, c.legal_name, c.sim FROM n CROSS JOIN LATERAL (
    SELECT o.id, o.legal_name, similarity(o.name_key, n.key) AS sim
    FROM (SELECT DISTINCT m.organization_id FROM ({names}) AS m) AS m
    CROSS JOIN LATERAL (SELECT o.id, o.legal_name, o.name_key FROM organizations o
        WHERE o.id = m.organization_id AND o.deleted_at IS NULL OFFSET 0) AS o
    WHERE coalesce(array_position(:created, o.id), 0) < n.pos
    ORDER BY sim DESC, o.id LIMIT :limit
) AS c
WHERE c.sim >= :threshold
"""
"""Similar names of a chunk's new rows, ``%`` through the GIN trigram indexes of
``organization_names`` (migration 0025: a row per live organization and direction, its name
without the legal form). A row with an INN is compared only with organizations without one (two
INNs are two companies: the partial index of those names), a row without one with every
organization. For a caller who does not see every direction the names are read direction by
direction (``direction = d.direction`` in a LATERAL subquery that ``OFFSET 0`` keeps from being
flattened into a join, which could scan every partition), so each scan is pruned, while it
runs, to the one partition holding that direction: the trigram lists read hold the names of
the caller's directions (and of the few hashed with them), never the whole base's. A caller who
sees every direction reads every partition. Each variant is its own statement. ``created``
lists the chunk's new ids in row order, already inserted: a row is compared with the rows
before it, never with itself or later ones (``pos`` is its place in that list), and its name key
is the one stored with it (the name's regular expressions are not run again).

Whatever the statistics say (a new installation's tables were analyzed empty by the migrations,
ADR 77), the organizations are read by their key only: the new rows one by one, then each
similar name's organization (a LATERAL subquery each, ``OFFSET 0``), never a scan of the
organizations with every name tested against them; and the names' key, led by the organization
(migration 0029), offers no way to a direction's names but the trigram indexes."""

_NAMES_OF_DIRECTIONS = (
    "SELECT m.organization_id FROM unnest(CAST(:dirs AS varchar[])) AS d(direction)"
    " CROSS JOIN LATERAL (SELECT m.organization_id FROM organization_names m"
    " WHERE m.direction = d.direction AND m.name_key % n.key{inn} OFFSET 0) AS m"
)
_NAMES_OF_ALL = "SELECT m.organization_id FROM organization_names m WHERE m.name_key % n.key{inn}"


IMPORT_SETTINGS = text(
    "SELECT set_config('pg_trgm.similarity_threshold', :similarity, true),"
    " set_config('gin_pending_list_limit', '16384', true), set_config('jit', 'off', true)"
)
"""For an import's transaction, of organizations or persons: the ``%`` threshold; GIN pending
lists long enough to take a chunk's rows without a merge half-way (they are merged at once by
MERGE_PENDING); no JIT compiling of statements whose costs are overestimated."""

MERGE_PENDING = text(
    "SELECT gin_clean_pending_list(g.indexrelid) FROM ("
    " SELECT i.indexrelid, (i.indrelid <> 'organizations'::regclass OR c.relname IN"
    " ('ix_organizations_emails_folded', 'ix_organizations_phones')) AS probed"
    " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam"
    " WHERE a.amname = 'gin' AND (i.indrelid = 'organizations'::regclass OR i.indrelid IN ("
    " SELECT inhrelid FROM pg_inherits WHERE inhparent = 'organization_names'::regclass))"
    ") AS g WHERE g.probed = :probed"
)
"""Merge the pending lists of GIN indexes of the organizations and of their names (each
partition's, migration 0025) into the indexes: with ``probed`` true those the next look-ups
probe (the organizations' e-mails and phones, their names' trigrams), right after a chunk's
rows are written; with ``probed`` false the others (search text, tags, ...), which no look-up
of an import probes, while the next chunk is matched (ADR 72), so they never fill up and make a
chunk's COPY merge them on the way. Every probe reads the whole pending list: merged, a chunk's
look-ups take milliseconds (with 4 MB lists left pending they took seconds; kept short by a
small limit, the writes merged them a few rows at a time and took twice as long)."""

UNDERCOUNTED = text(
    "SELECT CAST(c.oid AS regclass)::text FROM pg_class c"
    " WHERE c.oid = CAST('organizations' AS regclass) AND c.reltuples < :total / 2.0"
    " UNION ALL SELECT CAST(c.oid AS regclass)::text FROM pg_inherits i"
    " JOIN pg_class c ON c.oid = i.inhrelid"
    " CROSS JOIN unnest(CAST(:dirs AS varchar[]), CAST(:counts AS int[])) AS w(direction, n)"
    " WHERE i.inhparent = CAST('organization_names' AS regclass) AND satisfies_hash_partition("
    " i.inhparent,"
    " CAST(substring(pg_get_expr(c.relpartbound, c.oid) FROM 'modulus (\\d+)') AS int),"
    " CAST(substring(pg_get_expr(c.relpartbound, c.oid) FROM 'remainder (\\d+)') AS int),"
    " w.direction) GROUP BY c.oid, c.reltuples HAVING c.reltuples < max(w.n) / 2.0"
)
"""The organizations, and the partitions of ``organization_names`` holding the directions an
import wrote into, whose statistics count fewer than half the rows it wrote there (``total``
organizations, ``counts`` names per direction). The partition of a direction is found from the
catalog (its hash bounds), without reading the names. Such counts are those of a new
installation's tables, analyzed empty by the migrations, of tables vacuumed after a discarded
import (ADR 73: their pages kept, 0 rows or a few), or of a direction growing in an import's
transaction, which autovacuum does not see: the planner then counts a few rows where the import
wrote thousands (ADR 77)."""


async def analyze_undercounted(
    session: AsyncSession, total: int, written: dict[str, int]
) -> list[str]:
    """ANALYZE, in the import's transaction, the tables UNDERCOUNTED says count fewer than half
    the rows the import wrote (``total`` organizations, ``written`` names per direction); the
    tables analyzed. ANALYZE counts the transaction's own rows, and the planner reads the new
    count at once. A table another ANALYZE or VACUUM holds is skipped, not waited for (the next
    chunk tries again). The count then grows with the import: each table is analyzed again only
    once its rows have doubled."""
    dirs = sorted(written)
    found = await session.execute(
        UNDERCOUNTED, {"total": total, "dirs": dirs, "counts": [written[d] for d in dirs]}
    )
    tables = list(found.scalars())
    if tables:  # names from the catalog, no input
        conn = await session.connection()
        await conn.exec_driver_sql(f"ANALYZE (SKIP_LOCKED) {', '.join(tables)}")
    return tables


def _candidates_sql(with_inn: bool, sees_all: bool) -> Any:
    names = (_NAMES_OF_ALL if sees_all else _NAMES_OF_DIRECTIONS).format(
        inn=" AND NOT m.has_inn" if with_inn else ""
    )
    sql = text(_CANDIDATES.format(names=names)).bindparams(
        bindparam("nums", type_=ARRAY(Integer)),
        bindparam("positions", type_=ARRAY(Integer)),
        bindparam("created", type_=ARRAY(Uuid)),
    )
    return sql if sees_all else sql.bindparams(bindparam("dirs", type_=ARRAY(String(64))))


_SIMILAR = {(i, a): _candidates_sql(i, a) for i in (True, False) for a in (True, False)}


def similar_names(with_inn: bool, sees_all: bool) -> Any:
    """The statement of similar names (see _CANDIDATES) for rows with or without an INN, of a
    caller who sees every direction (no ``:dirs``) or not."""
    return _SIMILAR[(with_inn, sees_all)]


MATCHING_IDS = text(
    "SELECT id FROM organizations WHERE id = ANY(:ids)"
    " UNION SELECT id FROM organizations WHERE inn = ANY(:inns)"
    " UNION SELECT m.id FROM unnest(:emails) AS e(email) CROSS JOIN LATERAL (SELECT o.id"
    " FROM organizations o WHERE directory_fold_emails(o.emails) @> ARRAY[lower(e.email)]"
    " OFFSET 0) AS m"
    " UNION SELECT m.id FROM unnest(:phones) AS p(number) CROSS JOIN LATERAL (SELECT o.id"
    " FROM organizations o WHERE o.phones @> jsonb_build_array(jsonb_build_object('number',"
    " p.number)) OFFSET 0) AS m"
).bindparams(
    bindparam("ids", type_=ARRAY(Uuid)),
    bindparam("inns", type_=ARRAY(String(12))),
    bindparam("emails", type_=ARRAY(String(320))),
    bindparam("phones", type_=ARRAY(Text)),
)
"""Organizations with one of the ids, INNs, e-mails (case-folded, as persons' are) or phone numbers
(E.164) of a chunk: a probe of the INN index and of the GIN indexes on folded e-mails (migration
0020) and phones (migration 0013) per value, each a subquery of its own that no plan turns into a
join of every value with every organization (ADR 75, as the persons' ``MATCHING_PERSON_IDS``)."""


async def matching(
    session: AsyncSession,
    principal: Principal,
    *,
    inns: list[str],
    emails: list[str],
    phones: list[str],
    ids: list[uuid.UUID] | None = None,
) -> list[Organization]:
    """Live organizations the principal sees with one of the ids, INNs, e-mails or phones,
    locked for the import, oldest first: the ids by index probes, then the organizations by id."""
    params = {"ids": ids or [], "inns": inns, "emails": emails, "phones": phones}
    if not any(params.values()):
        return []
    ids = list(await session.scalars(MATCHING_IDS, params))
    if not ids:
        return []
    stmt = (
        organization_select()
        .where(
            organizations.c.id.in_(ids),
            organizations.c.deleted_at.is_(None),
            visible_to(principal, organizations.c.directions),
        )
        .order_by(organizations.c.created_at, organizations.c.id)
        .with_for_update(of=organizations)
    )
    found = (await session.execute(stmt)).all()
    return [Organization.model_validate(row, from_attributes=True, context=STORED) for row in found]


async def registered(
    session: AsyncSession, inns: list[str], domains: list[str]
) -> tuple[set[str], set[str]]:
    """The INNs and e-mail domains among these that the unwanted register lists (each list one
    array parameter: a chunk's thousands of values, as an IN list, took longer to render)."""
    if not inns and not domains:
        return set(), set()
    found = (
        await session.execute(
            select(unwanted_register.c.inn, unwanted_register.c.email_domain).where(
                unwanted_register.c.removed_at.is_(None),
                (unwanted_register.c.inn == any_(cast(inns, ARRAY(String))))
                | (unwanted_register.c.email_domain == any_(cast(domains, ARRAY(String)))),
            )
        )
    ).all()
    return {r.inn for r in found if r.inn}, {r.email_domain for r in found if r.email_domain}


async def active_employees(session: AsyncSession, ids: set[uuid.UUID]) -> set[uuid.UUID]:
    if not ids:
        return set()
    found = await session.scalars(
        select(employees.c.id).where(employees.c.id.in_(ids), employees.c.active)
    )
    return set(found)


async def visible_staff(session: AsyncSession, principal: Principal) -> list[tuple[Any, ...]]:
    """``(id, name, email)`` of the active employees the principal sees (a file's
    «Ответственный» names one of them)."""
    found = await session.execute(
        select(employees.c.id, employees.c.name, employees.c.email).where(
            employees.c.active, employee_visible(principal)
        )
    )
    return [tuple(row) for row in found]


async def visible_organizations(
    session: AsyncSession, principal: Principal, ids: set[uuid.UUID]
) -> set[uuid.UUID]:
    """The live organizations among ``ids`` the principal sees."""
    found = await session.scalars(
        select(organizations.c.id).where(
            organizations.c.id.in_(ids),
            organizations.c.deleted_at.is_(None),
            visible_to(principal, organizations.c.directions),
        )
    )
    return set(found)


async def visible_persons(
    session: AsyncSession, principal: Principal, ids: set[uuid.UUID]
) -> set[uuid.UUID]:
    """The live persons among ``ids`` the principal sees."""
    found = await session.scalars(
        select(persons.c.id).where(
            persons.c.id.in_(ids), persons.c.deleted_at.is_(None), person_visible(principal)
        )
    )
    return set(found)


async def update_organizations(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """One executemany UPDATE; each row names its organization by ``b_id``."""
    await session.execute(
        update(organizations)
        .where(organizations.c.id == bindparam("b_id"))
        .values(updated_at=func.now()),
        rows,
    )


async def blocked_flags(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, bool]:
    """The blocked flag of each of these organizations, as written."""
    found = await session.execute(
        select(organizations.c.id, organization_blocked_expr()).where(organizations.c.id.in_(ids))
    )
    return {row.id: row[1] for row in found}


# --- jobs (ADR 41) ----------------------------------------------------------------------------

IMPORT_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('clientele-directory-import'))")
"""Writing imports one at a time: the second of two imports of the same new file waits, then
finds the first one's organizations and updates them instead of creating them again."""


async def vacuum(engine: AsyncEngine, tables: list[Table], seconds: float) -> None:
    """VACUUM the tables, outside any transaction, within ``seconds`` (else TimeoutError, the
    statement cancelled in the server). A table another VACUUM (autovacuum) holds is skipped,
    not waited for; the empty pages at a table's end are kept (their truncation would lock the
    table against readers, and the next import fills them)."""
    names = ", ".join(table.name for table in tables)  # the service's own tables, no input
    async with asyncio.timeout(seconds), engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f"VACUUM (SKIP_LOCKED, TRUNCATE false) {names}"))


_CLAIM = text(
    "UPDATE import_jobs SET state = 'running', owner = :owner, attempts = attempts + 1,"
    " lease_until = now() + make_interval(secs => :lease), updated_at = now()"
    " WHERE id = (SELECT id FROM import_jobs WHERE state IN ('queued', 'running')"
    " AND (lease_until IS NULL OR lease_until < now())"
    " ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)"
    " RETURNING *"
)
"""The oldest job no live process runs: queued, or running under a lease its process stopped
renewing (it died); the claiming process owns it from now."""


async def insert_job(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(insert(import_jobs).values(**values))


async def insert_file_part(
    session: AsyncSession, job_id: uuid.UUID, part: int, data: bytes
) -> None:
    await session.execute(insert(import_job_files).values(job_id=job_id, part=part, data=data))


async def file_part(session: AsyncSession, job_id: uuid.UUID, part: int) -> bytes | None:
    found: bytes | None = await session.scalar(
        select(import_job_files.c.data).where(
            import_job_files.c.job_id == job_id, import_job_files.c.part == part
        )
    )
    return found


async def visible_job(
    session: AsyncSession, principal: Principal, job_id: uuid.UUID, *, for_update: bool = False
) -> Any:
    """The job if the principal sees one of its directions (None otherwise)."""
    stmt = select(import_jobs).where(
        import_jobs.c.id == job_id, visible_to(principal, import_jobs.c.directions)
    )
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).first()


async def claim(session: AsyncSession, owner: str, lease: float) -> Any:
    return (await session.execute(_CLAIM, {"owner": owner, "lease": lease})).first()


async def renew(session: AsyncSession, job_id: uuid.UUID, owner: str, lease: float) -> str:
    """Extend the lease of ``owner``'s job: ``kept``, ``cancel`` (kept, and a cancel was
    asked), ``ended`` (the job is finished: its child ended it) or ``lost`` (another process
    holds it now)."""
    cancel: bool | None = await session.scalar(
        update(import_jobs)
        .where(import_jobs.c.id == job_id, import_jobs.c.owner == owner)
        .values(lease_until=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, lease))
        .returning(import_jobs.c.cancel_requested)
    )
    if cancel is not None:
        return "cancel" if cancel else "kept"
    running = await session.scalar(
        select(import_jobs.c.finished_at.is_(None)).where(import_jobs.c.id == job_id)
    )
    return "lost" if running else "ended"


async def set_job(
    session: AsyncSession, job_id: uuid.UUID, holder: str | None, **values: Any
) -> bool:
    """Update the job if ``holder`` still owns it (whoever does when None); whether it did."""
    stmt = update(import_jobs).where(import_jobs.c.id == job_id)
    if holder is not None:
        stmt = stmt.where(import_jobs.c.owner == holder)
    result = await session.execute(stmt.values(updated_at=func.now(), **values))
    return bool(getattr(result, "rowcount", 0))


async def finish_job(
    session: AsyncSession, job_id: uuid.UUID, holder: str | None, **values: Any
) -> bool:
    """End the job (its file removed); False when another process holds it now."""
    if not await set_job(
        session, job_id, holder, finished_at=func.now(), owner=None, lease_until=None, **values
    ):
        return False
    await session.execute(delete(import_job_files).where(import_job_files.c.job_id == job_id))
    return True


async def clear_lines(session: AsyncSession, job_id: uuid.UUID, *, rank: int | None = None) -> None:
    """Remove the job's report lines (those of one rank only, when given)."""
    stmt = delete(import_job_lines).where(import_job_lines.c.job_id == job_id)
    if rank is not None:
        stmt = stmt.where(import_job_lines.c.rank == rank)
    await session.execute(stmt)


async def report_lines(
    session: AsyncSession, job_id: uuid.UUID, after: tuple[int, int], limit: int
) -> list[Any]:
    """Lines after the (rank, row) cursor, errors (rank 0) first."""
    return list(
        (
            await session.execute(
                select(import_job_lines.c.rank, import_job_lines.c.row, import_job_lines.c.line)
                .where(
                    import_job_lines.c.job_id == job_id,
                    tuple_(import_job_lines.c.rank, import_job_lines.c.row) > tuple_(*after),
                )
                .order_by(import_job_lines.c.rank, import_job_lines.c.row)
                .limit(limit)
            )
        ).all()
    )


async def failed_lines(session: AsyncSession, job_id: uuid.UUID) -> Any:
    """The lines of the rows with errors, in row order, with the rows as read (streamed)."""
    return await session.stream(
        select(import_job_lines.c.line, import_job_lines.c.cells)
        .where(import_job_lines.c.job_id == job_id, import_job_lines.c.rank == 0)
        .order_by(import_job_lines.c.row)
        .execution_options(yield_per=1000)
    )


# --- removing old jobs (ADR 58) ----------------------------------------------------------------

_OLD_JOB = text(
    "SELECT id, state, filename, created_by, finished_at FROM import_jobs"
    " WHERE finished_at < now() - make_interval(secs => :seconds)"
    " ORDER BY finished_at LIMIT 1 FOR UPDATE SKIP LOCKED"
)
"""The job that finished longest ago beyond the kept days and no other process is removing
(another replica's sweep holds its row lock until its transaction ends: it is skipped)."""

_PRUNE_LINES = text(
    "DELETE FROM import_job_lines WHERE ctid = ANY(ARRAY("
    "SELECT ctid FROM import_job_lines WHERE job_id = :job_id LIMIT :limit))"
)


async def old_job(session: AsyncSession, seconds: float) -> Any:
    """An old finished job, locked for its removal (None when there is none to take)."""
    return (await session.execute(_OLD_JOB, {"seconds": seconds})).first()


async def prune_lines(session: AsyncSession, job_id: uuid.UUID, limit: int) -> int:
    """Delete up to ``limit`` of the job's report lines; how many were deleted."""
    result = await session.execute(_PRUNE_LINES, {"job_id": job_id, "limit": limit})
    return int(getattr(result, "rowcount", 0))


async def delete_job(session: AsyncSession, job_id: uuid.UUID) -> None:
    """Remove the job with what is left of its file (its report lines are gone already)."""
    await session.execute(delete(import_job_files).where(import_job_files.c.job_id == job_id))
    await session.execute(delete(import_jobs).where(import_jobs.c.id == job_id))
