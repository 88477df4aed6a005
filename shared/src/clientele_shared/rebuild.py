"""``clientele rebuild`` and ``clientele republish``: read models from state topics (ADR 18).

A consumer service names its read models of state topics in ``READ_MODELS`` (its app module);
``rebuild`` loads the whole state topic into a copy of the table beside the live one, while the
service keeps serving and consuming, then swaps the copy in with one short transaction that
first takes over whatever the live table learned meanwhile (newer rows win; rows the state topic
does not have, e.g. records older than the state topic, are kept).

An owner names its entities in ``state_entities(outbox)``; ``republish`` stages the state record
of every row through the outbox in batches at a bounded rate: the running relay publishes them,
and consumers apply each only if it is newer than what they have.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import ColumnElement, MetaData, Table, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from clientele_shared.db import sessionmaker
from clientele_shared.events.outbox import NOTIFY_CHANNEL, Outbox
from clientele_shared.events.state import (
    Progress,
    ReadModel,
    Removal,
    StateLoader,
    StateSource,
)


@dataclass(frozen=True)
class StateReadModel:
    """A consumer's read model of a state topic, as ``clientele rebuild`` loads it."""

    topic: str
    model: ReadModel


@dataclass(frozen=True)
class StateEntity:
    """An owner's table and how its state records are read; ``key`` is the column (or SQL
    expression) whose values, as text, are the records' keys on the state topic (``id`` when
    not given)."""

    table: Table
    source: StateSource
    key: str | ColumnElement[Any] = "id"

    def key_column(self) -> ColumnElement[Any]:
        return self.table.c[self.key] if isinstance(self.key, str) else self.key


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def _indexes(conn: AsyncConnection, schema: str, table: str) -> dict[str, str]:
    rows = await conn.execute(
        text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = :s AND tablename = :t"),
        {"s": schema, "t": table},
    )
    return {str(name): str(definition) for name, definition in rows.all()}


def _shape(definition: str, index: str, table: str) -> str:
    """An index definition without its own and its table's names (to pair copies up)."""
    return re.sub(
        rf"\b{re.escape(table)}\b", "T", definition.replace(f" {index} ", " I ", 1)
    ).replace(f'"{table}"', "T")


async def rebuild(
    engine: AsyncEngine,
    read_model: StateReadModel,
    loader: StateLoader,
    *,
    report: Callable[[str], None] = print,
) -> Progress:
    """Load ``read_model`` from its state topic aside, then swap it in; return the totals."""
    live = read_model.model.table
    name = live.name
    aside_name = f"{name}_rebuild"
    aside = live.to_metadata(MetaData(schema=live.schema), name=aside_name)
    async with engine.begin() as conn:
        schema = live.schema or str(await conn.scalar(text("SELECT current_schema()")))
        in_schema = f"{_quoted(schema)}."
        await conn.execute(text(f"DROP TABLE IF EXISTS {in_schema}{_quoted(aside_name)}"))
        await conn.execute(
            text(
                f"CREATE TABLE {in_schema}{_quoted(aside_name)} "
                f"(LIKE {in_schema}{_quoted(name)} INCLUDING ALL)"
            )
        )
    sessions = sessionmaker(engine)
    last = 0.0

    removed: list[Removal] = []

    async def apply(snapshots: list[BaseModel], purged: list[Removal]) -> None:
        removed.extend(purged)
        async with sessions() as session, session.begin():
            await read_model.model.bulk(session, snapshots, into=aside)
            await read_model.model.remove(session, purged, into=aside)

    def progress(done: Progress) -> None:
        nonlocal last
        if time.monotonic() - last >= 1.0 or done.records + done.tombstones >= done.total:
            last = time.monotonic()
            rate = done.records / max(done.seconds, 1e-9)
            report(
                f"{name}: {done.records + done.tombstones} of at most {done.total} records "
                f"({done.tombstones} tombstones), {done.seconds:.1f} s, {rate:,.0f}/s"
            )

    done = await loader.load(apply, progress=progress)
    model = read_model.model
    columns = [column.name for column in live.columns]
    updates = ", ".join(
        f"{_quoted(c)} = EXCLUDED.{_quoted(c)}" for c in columns if c not in model.keys
    )
    conflict = ", ".join(_quoted(c) for c in model.keys)
    newer = (
        f"({_quoted(aside_name)}.{_quoted(model.version)}, "
        f"{_quoted(aside_name)}.{_quoted(model.revision)}) < "
        f"(EXCLUDED.{_quoted(model.version)}, EXCLUDED.{_quoted(model.revision)})"
    )
    async with engine.begin() as conn:
        before = await _indexes(conn, schema, name)
        await conn.execute(text(f"LOCK TABLE {in_schema}{_quoted(name)} IN ACCESS EXCLUSIVE MODE"))
        # what the live consumers applied while the copy was loading
        await conn.execute(
            text(
                # names from the service's own table definitions, quoted: no outside input
                f"INSERT INTO {in_schema}{_quoted(aside_name)} "  # noqa: S608
                f"SELECT * FROM {in_schema}{_quoted(name)} "
                f"ON CONFLICT ({conflict}) DO UPDATE SET {updates} WHERE {newer}"
            )
        )
        # a row the live table kept although the topic removed it since (its tombstone came
        # while the service was not consuming) does not come back: the tombstones again
        async with AsyncSession(bind=conn) as session:
            await model.remove(session, removed, into=aside)
        replaced = f"{name}_replaced"
        await conn.execute(
            text(f"ALTER TABLE {in_schema}{_quoted(name)} RENAME TO {_quoted(replaced)}")
        )
        await conn.execute(
            text(f"ALTER TABLE {in_schema}{_quoted(aside_name)} RENAME TO {_quoted(name)}")
        )
        await conn.execute(text(f"DROP TABLE {in_schema}{_quoted(replaced)}"))
        after = await _indexes(conn, schema, name)
        originals = {_shape(d, i, name): i for i, d in before.items()}
        for index, definition in after.items():
            original = originals.get(_shape(definition, index, name))
            if original is not None and original != index:
                await conn.execute(
                    text(f"ALTER INDEX {in_schema}{_quoted(index)} RENAME TO {_quoted(original)}")
                )
        rows = await conn.scalar(select(text("count(*)")).select_from(live))
    report(f"{name}: swapped in, {rows} rows ({done.records} snapshots in {done.seconds:.1f} s)")
    return done


async def republish(
    engine: AsyncEngine,
    outbox: Outbox,
    entity: StateEntity,
    *,
    batch_size: int = 500,
    rate: float = 2000.0,
    report: Callable[[str], None] = print,
) -> int:
    """Stage the state record of every row of ``entity`` (``rate`` records per second at most);
    return how many were staged."""
    sessions = sessionmaker(engine)
    key = entity.key_column()
    after = None
    staged = 0
    started = time.monotonic()
    while True:
        query = select(key).order_by(key).limit(batch_size)
        if after is not None:
            query = query.where(key > after)
        async with sessions() as session, session.begin():
            ids = list((await session.scalars(query)).all())
            if not ids:
                break
            snapshots = await entity.source.snapshots(session, [str(i) for i in ids])
            await session.execute(insert(outbox.table), outbox.rows(snapshots))
            await session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
        after = ids[-1]
        staged += len(snapshots)
        report(f"{entity.table.name}: {staged} state records staged")
        await asyncio.sleep(max(0.0, started + staged / rate - time.monotonic()))
    return staged
