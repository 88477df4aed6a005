"""What every service's business operations share: the unit of work, the versioned write and
the append-only audit trail (ADR 20).

A service function opens one :class:`UnitOfWork` per operation: one transaction in which it
writes its rows, appends audit entries and stages outgoing events; the audit entries (and any
other appended rows) and the events are written in one statement in that same transaction, just
before it commits, and are lost with it when it rolls back (ADR 53).
A versioned record (``version``, ``updated_at``, ``updated_by`` columns) changes through
:meth:`Versioned.lock` then :func:`write_version`: the row locked ``FOR UPDATE``, ``If-Match``
checked against its version (412), the new values written with ``version + 1``, one audit entry
with who, when and the old and new values, and the change's events staged.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Protocol, cast

from pydantic import BaseModel
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    RowMapping,
    String,
    Table,
    Text,
    Uuid,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy import column as sql_column
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import Update
from sqlalchemy.sql.elements import ClauseElement

from clientele_shared.auth.access import writable_directions
from clientele_shared.auth.principal import Principal
from clientele_shared.bulk import COPY_FROM, Copy, insert_together
from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.events.outbox import Outbox
from clientele_shared.http.concurrency import PreconditionFailed, check_version
from clientele_shared.http.problems import Conflict
from clientele_shared.observability import current_correlation_id


def actor_of(principal: Principal) -> Actor:
    """The actor events and audit entries name for a caller."""
    return Actor(subject=principal.subject, kind=principal.kind)


# --- the audit trail -------------------------------------------------------------------------


def audit_table(metadata: MetaData, name: str = "audit_log") -> Table:
    """One append-only row per change of any record of a service (entity kind and id)."""
    return Table(
        name,
        metadata,
        Column("id", BigInteger, Identity(always=True), primary_key=True),
        Column("entity_kind", String(40), nullable=False),
        Column("entity_id", Uuid, nullable=False),
        Column("version", Integer),
        Column("action", String(40), nullable=False),
        Column("actor_subject", String(200), nullable=False),
        Column("actor_kind", String(20), nullable=False),
        Column("actor_name", String(500)),
        Column("correlation_id", String(128), nullable=False),
        Column("changes", JSONB, nullable=False, server_default="{}"),
        Column("note", Text),
        Column("occurred_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Index(f"ix_{name}_entity", "entity_kind", "entity_id", "id"),
    )


def _append_only_function(table: Table) -> str:
    prefix = f"{table.schema}." if table.schema else ""
    return f"{prefix}{table.name}_append_only"


def create_append_only_table(bind: Connection, table: Table) -> None:
    """Create ``table`` (in a migration) with a trigger refusing UPDATE and DELETE on it."""
    table.create(bind)
    function = _append_only_function(table)
    bind.exec_driver_sql(
        f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN RAISE EXCEPTION '{table.fullname} is append-only'; END $$"
    )
    bind.exec_driver_sql(
        f"CREATE TRIGGER {table.name}_append_only BEFORE UPDATE OR DELETE ON {table.fullname} "
        f"FOR EACH ROW EXECUTE FUNCTION {function}()"
    )


def drop_append_only_table(bind: Connection, table: Table) -> None:
    table.drop(bind)
    bind.exec_driver_sql(f"DROP FUNCTION {_append_only_function(table)}()")


class AuditEntry(BaseModel):
    """One change of a record as the audit trail keeps it."""

    id: int
    entity_kind: str
    entity_id: uuid.UUID
    action: str
    version: int | None
    actor_subject: str
    actor_kind: str
    actor_name: str | None = None
    correlation_id: str
    occurred_at: datetime
    changes: dict[str, Any]
    note: str | None = None


async def audit_trail(
    session: AsyncSession,
    table: Table,
    kind: str,
    entity_id: uuid.UUID,
    *,
    after: int = 0,
    limit: int = 100,
) -> list[AuditEntry]:
    """A record's audit entries in the order they happened, after the entry id ``after``."""
    rows = (
        await session.execute(
            select(table)
            .where(table.c.entity_kind == kind, table.c.entity_id == entity_id, table.c.id > after)
            .order_by(table.c.id)
            .limit(limit)
        )
    ).all()
    return [AuditEntry.model_validate(row, from_attributes=True) for row in rows]


# --- the unit of work ------------------------------------------------------------------------


class UnitOfWork:
    """One business operation: its session (in a transaction), its author, its events."""

    def __init__(
        self,
        session: AsyncSession,
        outbox: Outbox,
        audit_log: Table | None,
        actor: Actor,
        actor_name: str | None = None,
        *,
        batched: bool = False,
        defer_at: datetime | None = None,
    ) -> None:
        self.session = session
        self.outbox = outbox
        self.audit_log = audit_log
        self.actor = actor
        self.actor_name = actor_name
        self.events: list[Envelope] = []
        # batched (unit_of_work, within): appended rows wait for finish(), else written at once
        self._appended: dict[Table, list[dict[str, Any]]] | None = {} if batched else None
        self.defer_at = defer_at
        """Set (the transaction's time): :func:`defer_version` keeps its writes for
        :meth:`flush_versions` (a batch of locked records' writes in one round trip, ADR 60)."""
        self._deferred: list[_Deferred] = []

    async def append(self, table: Table, rows: Iterable[dict[str, Any]]) -> None:
        """Rows of an append-only table (the audit trail, a history) that nothing in the
        operation reads back: written when it ends, in one statement with its events (ADR 53)."""
        if self._appended is None:
            await insert_together(self.session, [(table, list(rows))])
        else:
            self._appended.setdefault(table, []).extend(rows)

    async def finish(self) -> None:
        """Write the deferred versions, then the appended rows and the events to the outbox,
        in one statement."""
        await self.flush_versions()
        appended = self._appended or {}
        if self._appended is not None:
            self._appended = {}
        events, self.events = self.events, []
        await self.outbox.add_many(self.session, events, together=list(appended.items()))

    def hand_over(self, to: UnitOfWork) -> None:
        """Give this operation's appended rows and staged events to ``to`` (both batched),
        written when that one finishes: a step of a larger operation whose rows are written
        together at its end (automation's inbox batch, ADR 54)."""
        if self._appended is None or to._appended is None:
            raise RuntimeError("only a batched unit of work hands its rows over")
        for table, rows in self._appended.items():
            to._appended.setdefault(table, []).extend(rows)
        to.events.extend(self.events)
        to._deferred.extend(self._deferred)
        self._appended, self.events, self._deferred = {}, [], []

    @property
    def deferring(self) -> bool:
        """Whether versioned writes wait for :meth:`flush_versions` (``defer_at`` set)."""
        return self.defer_at is not None

    async def flush_versions(self) -> None:
        """Write the versions :func:`defer_version` kept: each record from the version it had
        to its last, with its last values; those of one table and one set of columns in one
        UPDATE (one round trip). 412 when a record's version moved meanwhile (it was not
        locked by the caller); the other records of the flush may be written by then, so the
        caller rolls the unit of work back (every caller lets the 412 end it)."""
        pending, self._deferred = self._deferred, []
        merged: dict[tuple[Table, uuid.UUID], _Deferred] = {}
        for write in pending:
            key = (write.record.table, write.entity_id)
            first = merged.get(key)
            merged[key] = write if first is None else write.after(first)
        shapes: dict[tuple[Table, str, tuple[str, ...]], list[_Deferred]] = {}
        for write in merged.values():
            names = tuple(sorted(write.values))
            shapes.setdefault((write.record.table, write.record.key, names), []).append(write)
        for (table, column, names), writes in shapes.items():
            written = set(
                await self.session.scalars(
                    _cached_deferred_update(table, column, names),
                    _deferred_parameters(table, names, writes),
                )
            )
            stale = next((w for w in writes if w.entity_id not in written), None)
            if stale is not None:
                raise PreconditionFailed(stale.current + 1)

    def stage(self, *envelopes: Envelope) -> None:
        """Events to write to the outbox when the operation commits."""
        self.events.extend(envelopes)

    async def audit(
        self,
        *,
        kind: str,
        entity_id: uuid.UUID,
        action: str,
        version: int | None,
        changes: dict[str, Any] | None = None,
        note: str | None = None,
    ) -> None:
        """Append one entry to the audit trail, in the operation's transaction."""
        await self.audit_many(
            kind=kind,
            action=action,
            entries=[(entity_id, version, changes or {})],
            note=note,
        )

    async def audit_many(
        self,
        *,
        kind: str,
        action: str,
        entries: Iterable[tuple[uuid.UUID, int | None, dict[str, Any]]],
        note: str | None = None,
    ) -> None:
        """Append one entry per ``(entity_id, version, changes)`` in one statement (a bulk
        operation's records, all changed the same way by the same actor)."""
        if self.audit_log is None:
            raise RuntimeError("this service keeps no audit trail")
        rows = audit_rows(
            self.audit_log,
            self.actor,
            kind=kind,
            action=action,
            entries=entries,
            actor_name=self.actor_name,
            note=note,
        )
        if len(rows) >= COPY_FROM:
            await Copy.of(self.audit_log, rows).write(self.session)
        else:
            await self.append(self.audit_log, rows)


async def append_audit(
    session: AsyncSession,
    audit_log: Table,
    actor: Actor,
    *,
    kind: str,
    action: str,
    entries: Iterable[tuple[uuid.UUID, int | None, dict[str, Any]]],
    actor_name: str | None = None,
    note: str | None = None,
) -> None:
    """Append one audit entry per ``(entity_id, version, changes)`` in the session's transaction
    (what :meth:`UnitOfWork.audit_many` does; for code that has a session but no unit of work)."""
    rows = audit_rows(
        audit_log,
        actor,
        kind=kind,
        action=action,
        entries=entries,
        actor_name=actor_name,
        note=note,
    )
    if len(rows) >= COPY_FROM:
        await Copy.of(audit_log, rows).write(session)
    elif rows:
        await session.execute(insert(audit_log), rows)


def audit_rows(
    audit_log: Table,
    actor: Actor,
    *,
    kind: str,
    action: str,
    entries: Iterable[tuple[uuid.UUID, int | None, dict[str, Any]]],
    actor_name: str | None = None,
    note: str | None = None,
) -> list[dict[str, Any]]:
    """The audit trail's rows of ``entries``."""
    columns = audit_log.c
    # The shared shape (audit_table) names the entity by kind and id; an older trail of one
    # kind of record (interactions' interaction_audit) keys it by a "<kind>_id" column.
    entity = "entity_id" if "entity_kind" in columns else f"{kind}_id"
    common = {
        "entity_kind": kind,
        "action": action,
        "actor_subject": actor.subject,
        "actor_kind": actor.kind,
        "actor_name": actor_name,
        "correlation_id": current_correlation_id(),
        "note": note,
    }
    common = {name: value for name, value in common.items() if name in columns}
    return [
        {**common, entity: entity_id, "version": version, "changes": changes}
        for entity_id, version, changes in entries
    ]


@asynccontextmanager
async def unit_of_work(
    sessions: async_sessionmaker[AsyncSession],
    outbox: Outbox,
    audit_log: Table | None,
    author: Principal | Actor,
) -> AsyncIterator[UnitOfWork]:
    """Open a transaction; on a clean exit write the appended rows (audit entries...) and stage
    the collected events in the outbox, in one statement, and commit; on an exception roll
    everything back (rows, audit entries and events alike). A service
    without an audit trail (the notifier: its delivery log is its record) passes None."""
    if isinstance(author, Principal):
        actor, name = actor_of(author), author.name
    else:
        actor, name = author, None
    async with sessions() as session, session.begin():
        uow = UnitOfWork(session, outbox, audit_log, actor, name, batched=True)
        yield uow
        await uow.finish()


@asynccontextmanager
async def within(
    session: AsyncSession,
    outbox: Outbox,
    audit_log: Table | None,
    actor: Actor,
    actor_name: str | None = None,
) -> AsyncIterator[UnitOfWork]:
    """A unit of work inside a transaction someone else owns (an event consumer's inbox
    transaction): the appended rows and the events are written when the block ends; the owner
    commits."""
    uow = UnitOfWork(session, outbox, audit_log, actor, actor_name, batched=True)
    yield uow
    await uow.finish()


async def read_snapshot(session: AsyncSession) -> None:
    """Make the session's transaction (just begun, nothing run yet) a read-only snapshot: its
    reads agree with each other (REPEATABLE READ), as a report or a board of counts and pages
    needs."""
    await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))


# --- versioned records -----------------------------------------------------------------------


@dataclass(frozen=True)
class Versioned:
    """A table of versioned records: an id, ``version``, ``updated_at``/``updated_by`` and
    (for soft deletion) ``deleted_at``/``deleted_by``; ``kind`` names them in the audit trail."""

    table: Table
    kind: str
    key: str = "id"

    async def lock(self, session: AsyncSession, entity_id: uuid.UUID) -> RowMapping | None:
        """The record locked FOR UPDATE until the transaction ends (deleted ones too)."""
        key = self.table.c[self.key]
        return (
            (await session.execute(select(self.table).where(key == entity_id).with_for_update()))
            .mappings()
            .first()
        )


async def write_version(
    uow: UnitOfWork,
    record: Versioned,
    entity_id: uuid.UUID,
    *,
    current: int,
    expected: set[int],
    values: dict[str, Any],
    action: str,
    changes: dict[str, Any] | None = None,
    note: str | None = None,
    events: Iterable[Envelope] = (),
) -> int:
    """Write a new version of a record locked by :meth:`Versioned.lock`; return its number.

    412 unless ``expected`` (the versions ``If-Match`` names) holds ``current``. The audit entry
    records ``changes`` (``{field: {old, new}}``); ``events`` are staged in the unit of work.
    """
    await _write_version(
        uow, record, entity_id, current, expected, values, action, changes, note, events
    )
    return current + 1


async def write_version_row(
    uow: UnitOfWork,
    record: Versioned,
    entity_id: uuid.UUID,
    *,
    current: int,
    expected: set[int],
    values: dict[str, Any],
    action: str,
    changes: dict[str, Any] | None = None,
    note: str | None = None,
    events: Iterable[Envelope] = (),
) -> RowMapping:
    """:func:`write_version` answering the record's new row, as the update returned it (no
    second read of what was just written)."""
    row = await _write_version(
        uow,
        record,
        entity_id,
        current,
        expected,
        values,
        action,
        changes,
        note,
        events,
        returning=True,
    )
    assert row is not None
    return row


def _version_statement(
    table: Table,
    key: str,
    values: dict[str, Any],
    returning: bool,
    given: Any = None,
) -> Update:
    """The versioned write's UPDATE of ``values`` where the key and the current version match
    (``w_key``, ``w_current``; the new version ``w_version``, the author ``w_by``): bound
    parameters, or the columns of ``given`` (a FROM of many records' writes)."""
    w = (
        given.c
        if given is not None
        else {name: bindparam(name) for name in ("w_key", "w_current", "w_version", "w_by")}
    )
    statement = (
        update(table)
        .where(table.c[key] == w["w_key"], table.c.version == w["w_current"])
        .values(
            {
                **values,
                "version": w["w_version"],
                "updated_at": func.now(),
                "updated_by": w["w_by"],
            }
        )
    )
    return statement.returning(table) if returning else statement


@functools.lru_cache(maxsize=256)
def _cached_version_update(
    table: Table, key: str, names: tuple[str, ...], returning: bool
) -> Update:
    """``_version_statement`` of ``names`` as bound parameters, built once per shape: a
    statement object keeps its cache key, so a write builds and hashes nothing."""
    values = {name: bindparam(f"w_{name}", type_=table.c[name].type) for name in names}
    return _version_statement(table, key, values, returning)


def _is_array(column: Column[Any]) -> bool:
    return isinstance(column.type, ARRAY)


@functools.lru_cache(maxsize=256)
def _cached_deferred_update(table: Table, key: str, names: tuple[str, ...]) -> Update:
    """One UPDATE of many records' deferred writes of ``names``, built once per shape: the
    records' keys, versions, authors and values bound as one array per column (``w_key``,
    ``w_current``, ``w_version``, ``w_by``, ``w_<name>``) and unnested together, answering the
    keys of the records it wrote. An array column's values travel as array literals (text):
    PostgreSQL has no array of arrays of different lengths; the bound arrays have one
    dimension, so a JSON column's list value is one element."""
    types = {
        "w_key": table.c[key].type,
        "w_current": Integer(),
        "w_version": Integer(),
        "w_by": table.c.updated_by.type,
        **{f"w_{n}": Text() if _is_array(table.c[n]) else table.c[n].type for n in names},
    }
    rows = (
        func.unnest(
            *(bindparam(name, type_=ARRAY(type_, dimensions=1)) for name, type_ in types.items())
        )
        .table_valued(*(sql_column(name, type_) for name, type_ in types.items()))
        .render_derived(name="w")
    )
    values: dict[str, Any] = {
        n: rows.c[f"w_{n}"].cast(table.c[n].type) if _is_array(table.c[n]) else rows.c[f"w_{n}"]
        for n in names
    }
    return _version_statement(table, key, values, False, rows).returning(table.c[key])


def _deferred_parameters(
    table: Table, names: tuple[str, ...], writes: list[_Deferred]
) -> dict[str, list[Any]]:
    """The arrays :func:`_cached_deferred_update` unnests, one element per write."""
    parameters: dict[str, list[Any]] = {
        "w_key": [w.entity_id for w in writes],
        "w_current": [w.current for w in writes],
        "w_version": [w.version for w in writes],
        "w_by": [w.by for w in writes],
    }
    for name in names:
        array = _is_array(table.c[name])
        parameters[f"w_{name}"] = [
            _array_literal(w.values[name]) if array else w.values[name] for w in writes
        ]
    return parameters


_ARRAY_ELEMENTS = (str, uuid.UUID, int, Decimal, date)
"""What an array column's element may be (its text is what PostgreSQL reads back as it)."""


def _array_literal(values: Sequence[Any] | None) -> str | None:
    """A one-dimensional array as PostgreSQL reads it from text: each element quoted, its
    quotes and backslashes escaped, an enum as its value; an element of another kind (a dict,
    a list), whose ``str`` is no value, is refused."""
    if values is None:
        return None
    quoted = []
    for value in values:
        if value is None:
            quoted.append("NULL")
            continue
        if isinstance(value, Enum):
            value = value.value
        if not isinstance(value, _ARRAY_ELEMENTS):
            raise TypeError(f"an array element of type {type(value).__name__}")
        quoted.append('"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(quoted) + "}"


def _version_update(
    record: Versioned,
    entity_id: uuid.UUID,
    current: int,
    values: dict[str, Any],
    returning: bool,
) -> tuple[Update, dict[str, Any]]:
    """The versioned write's UPDATE and its parameters (but ``w_by``, the author)."""
    parameters = {"w_key": entity_id, "w_current": current, "w_version": current + 1}
    if any(isinstance(value, ClauseElement) for value in values.values()):
        return _version_statement(record.table, record.key, values, returning), parameters
    parameters |= {f"w_{name}": value for name, value in values.items()}
    return _cached_version_update(record.table, record.key, tuple(values), returning), parameters


async def _write_version(
    uow: UnitOfWork,
    record: Versioned,
    entity_id: uuid.UUID,
    current: int,
    expected: set[int],
    values: dict[str, Any],
    action: str,
    changes: dict[str, Any] | None,
    note: str | None,
    events: Iterable[Envelope],
    *,
    returning: bool = False,
) -> RowMapping | None:
    check_version(expected, current)
    version = current + 1
    statement, parameters = _version_update(record, entity_id, current, values, returning)
    parameters["w_by"] = uow.actor.subject
    row: RowMapping | None = None
    if returning:
        row = (await uow.session.execute(statement, parameters)).mappings().first()
        written = row is not None
    else:
        result = cast(CursorResult[Any], await uow.session.execute(statement, parameters))
        written = result.rowcount == 1
    if not written:  # not locked by the caller and changed meanwhile
        raise PreconditionFailed(current + 1)
    await uow.audit(
        kind=record.kind,
        entity_id=entity_id,
        action=action,
        version=version,
        changes=changes,
        note=note,
    )
    uow.stage(*events)
    return row


@dataclass(frozen=True)
class _Deferred:
    """A versioned write :func:`defer_version` kept: ``current`` to ``version``."""

    record: Versioned
    entity_id: uuid.UUID
    current: int
    version: int
    values: dict[str, Any]
    by: str

    def after(self, first: _Deferred) -> _Deferred:
        """This write following ``first`` of the same record: one write from its version."""
        if first.version != self.current:
            raise PreconditionFailed(first.version)
        return _Deferred(
            self.record,
            self.entity_id,
            first.current,
            self.version,
            {**first.values, **self.values},
            self.by,
        )


async def defer_version(
    uow: UnitOfWork,
    record: Versioned,
    entity_id: uuid.UUID,
    *,
    current: int,
    expected: set[int],
    values: dict[str, Any],
    action: str,
    changes: dict[str, Any] | None = None,
    note: str | None = None,
    events: Iterable[Envelope] = (),
) -> None:
    """:func:`write_version` of a record the caller locked (so its version cannot move), its
    UPDATE kept in the unit of work (``defer_at`` set) until :meth:`UnitOfWork.flush_versions`
    or its end: a batch of records' writes in one round trip (automation, ADR 60). ``values``
    are plain values (no SQL expressions); the audit entry and the events as ``write_version``."""
    check_version(expected, current)
    if not uow.deferring or any(isinstance(v, ClauseElement) for v in values.values()):
        raise RuntimeError("defer_version needs a deferring unit of work and plain values")
    uow._deferred.append(
        _Deferred(record, entity_id, current, current + 1, dict(values), uow.actor.subject)
    )
    await uow.audit(
        kind=record.kind,
        entity_id=entity_id,
        action=action,
        version=current + 1,
        changes=changes,
        note=note,
    )
    uow.stage(*events)


@dataclass(frozen=True)
class NewVersion:
    """One record's change in :func:`write_versions`."""

    entity_id: uuid.UUID
    current: int
    changes: dict[str, Any]


async def write_versions(
    uow: UnitOfWork,
    record: Versioned,
    versions: list[NewVersion],
    *,
    values: dict[str, Any],
    action: str,
    events: Iterable[Envelope] = (),
) -> None:
    """Write the same ``values`` as the next version of many records the caller locked (no
    If-Match: the locks hold their versions), in one batch of statements, with one audit entry
    each (its own ``changes``); ``events`` are staged in the unit of work."""
    if not versions:
        return
    key = record.table.c[record.key]
    await uow.session.execute(
        update(record.table)
        .where(key == bindparam("_entity_id"), record.table.c.version == bindparam("_current"))
        .values(
            **values,
            version=record.table.c.version + 1,
            updated_at=func.now(),
            updated_by=uow.actor.subject,
        ),
        [{"_entity_id": v.entity_id, "_current": v.current} for v in versions],
    )
    await uow.audit_many(
        kind=record.kind,
        action=action,
        entries=[(v.entity_id, v.current + 1, v.changes) for v in versions],
    )
    uow.stage(*events)


def field_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{field: {old, new}}`` of the keys whose values differ (the audit entry's changes)."""
    return {key: {"old": old[key], "new": new[key]} for key in new if old.get(key) != new[key]}


def soft_delete_values(subject: str, *, delete: bool = True) -> dict[str, Any]:
    """The columns a soft delete (or, with ``delete=False``, a restore) sets besides the version."""
    return {
        "deleted_at": func.now() if delete else None,
        "deleted_by": subject if delete else None,
    }


class Deletable(Protocol):
    """A soft-deletable record as a service reads it."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def version(self) -> int: ...

    @property
    def deleted_at(self) -> datetime | None: ...

    @property
    def directions(self) -> Sequence[str]: ...


async def soft_delete(
    uow: UnitOfWork,
    record: Versioned,
    current: Deletable,
    expected: set[int],
    *,
    writer: Principal | None = None,
    events: Iterable[Envelope] = (),
) -> int:
    """Soft-delete a record locked by :meth:`Versioned.lock` (restorable); return the new
    version. 412 on a stale If-Match, then, with ``writer``, 403 unless he may write in all its
    directions; audited as ``deleted``, ``events`` staged."""
    return await _set_deleted(uow, record, current, expected, True, writer, events)


async def restore(
    uow: UnitOfWork,
    record: Versioned,
    current: Deletable,
    expected: set[int],
    *,
    what: str,
    writer: Principal | None = None,
    events: Iterable[Envelope] = (),
) -> int:
    """Bring back a soft-deleted record locked by :meth:`Versioned.lock`; return the new
    version. 409 when it is not deleted or was merged into another (its ``merged_into``, where
    it has one; ``what`` names it: "The deal is not deleted."), 412 on a stale If-Match, then,
    with ``writer``, 403 unless he may write in all its directions; audited as ``restored``,
    ``events`` staged."""
    if current.deleted_at is None:
        raise Conflict(f"The {what} is not deleted.")
    merged_into = getattr(current, "merged_into", None)
    if merged_into is not None:
        raise Conflict(
            f"The {what} was merged into another; it cannot be restored.",
            merged_into=str(merged_into),
        )
    return await _set_deleted(uow, record, current, expected, False, writer, events)


async def _set_deleted(
    uow: UnitOfWork,
    record: Versioned,
    current: Deletable,
    expected: set[int],
    delete: bool,
    writer: Principal | None,
    events: Iterable[Envelope],
) -> int:
    check_version(expected, current.version)
    if writer is not None:
        writable_directions(writer, current.directions)
    return await write_version(
        uow,
        record,
        current.id,
        current=current.version,
        expected=expected,
        values=soft_delete_values(uow.actor.subject, delete=delete),
        action="deleted" if delete else "restored",
        events=events,
    )
