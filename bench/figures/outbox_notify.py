"""What `NOTIFY` in every write transaction costs when several services write on one server."""

from __future__ import annotations

import asyncio
import contextlib
import time

import asyncpg

from bench.registry import Context, Metric, figure
from bench.stack import new_id

MODES = ("notify", "plain", "coalesced")


async def _write_for(
    conns: list[asyncpg.Connection], schemas: list[str], seconds: float, notify: bool
) -> int:
    """Write transactions on every connection for `seconds`; return how many committed."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def writer(conn: asyncpg.Connection, schema: str) -> None:
        nonlocal done
        # One round trip per transaction (simple protocol): what is measured is the server.
        script = (
            f"BEGIN; INSERT INTO \"{schema}\".records (name) VALUES ('a contact');"
            f' INSERT INTO "{schema}".outbox (topic, key, value) VALUES'
            " ('t', md5(random()::text), '\\x7b7d');"
            + (" NOTIFY clientele_outbox;" if notify else "")
            + " COMMIT;"
        )
        while time.perf_counter() < deadline:
            await conn.execute(script)
            done += 1

    await asyncio.gather(*(writer(c, s) for c, s in zip(conns, schemas, strict=True)))
    return done


async def _notifier(conn: asyncpg.Connection, interval: float) -> None:
    """The coalesced design: one NOTIFY per interval, outside the writers' transactions."""
    while True:
        await conn.execute("NOTIFY clientele_outbox")
        await asyncio.sleep(interval)


@figure(
    "outbox-notify",
    "Backbone: write transactions per second with and without NOTIFY in each",
    kind="figure",
    description=(
        "`services` services (a schema each, with an outbox and a business table, and a relay's"
        " LISTEN connection each) on one PostgreSQL server, `writers` concurrent writers per"
        " service, each committing transactions of one business row and one outbox row as fast"
        " as it can for `seconds`, one round trip per transaction. `notify`: NOTIFY in every"
        " transaction (as `Outbox.add_many` did); `plain`: no NOTIFY, the write path of a service"
        " now (its commits wake its own relay in-process, ADR 17); `coalesced`: the alternative"
        " considered, one NOTIFY per service every `interval` s from a connection of its own."
        " Modes alternate within a run. NB: the local server runs with"
        " fsync and synchronous_commit off, so a commit costs no disk flush; on a durable server"
        " NOTIFY's global lock is held across the flush and costs more."
    ),
    metrics=[
        Metric("notify_tx_per_s", "NOTIFY in every transaction", "tx/s"),
        Metric("plain_tx_per_s", "no NOTIFY", "tx/s"),
        Metric("coalesced_tx_per_s", "one NOTIFY per service every 5 ms", "tx/s"),
        Metric("plain_over_notify", "no NOTIFY / NOTIFY", "x"),
    ],
    params={"services": 5, "writers": 8, "seconds": 4.0, "interval": 0.005},
    quick_params={"services": 5, "writers": 8, "seconds": 2.0, "interval": 0.005},
    timeout=180,
)
async def outbox_notify(ctx: Context) -> dict[str, float]:
    services, writers = int(ctx.params["services"]), int(ctx.params["writers"])
    seconds, interval = float(ctx.params["seconds"]), float(ctx.params["interval"])
    run = new_id()
    schemas = [f"bench_notify_{run}_{n}" for n in range(services)]
    admin = await asyncpg.connect(ctx.database_url)
    opened: list[asyncpg.Connection] = []
    try:
        for schema in schemas:
            await admin.execute(
                f'CREATE SCHEMA "{schema}";'
                f' CREATE TABLE "{schema}".records (id bigint GENERATED ALWAYS AS IDENTITY'
                " PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());"
                f' CREATE TABLE "{schema}".outbox (id bigint GENERATED ALWAYS AS IDENTITY'
                " PRIMARY KEY, topic text NOT NULL, key text NOT NULL, value bytea NOT NULL,"
                " created_at timestamptz NOT NULL DEFAULT now())"
            )
        opened = [await asyncpg.connect(ctx.database_url) for _ in range(services * (writers + 1))]
        listeners, conns = opened[:services], opened[services:]
        woken = 0

        def on_notify(*_: object) -> None:
            nonlocal woken
            woken += 1

        for listener in listeners:
            await listener.add_listener("clientele_outbox", on_notify)
        writer_schemas = [schema for schema in schemas for _ in range(writers)]
        results: dict[str, float] = {}
        for mode in MODES:
            notifiers = [
                asyncio.create_task(_notifier(listener, interval))
                for listener in (listeners if mode == "coalesced" else [])
            ]
            started = time.perf_counter()
            done = await _write_for(conns, writer_schemas, seconds, notify=mode == "notify")
            results[f"{mode}_tx_per_s"] = done / (time.perf_counter() - started)
            for task in notifiers:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        results["plain_over_notify"] = results["plain_tx_per_s"] / results["notify_tx_per_s"]
        ctx.notes.append(f"{services} services x {writers} writers; {woken} notifications heard")
        return results
    finally:
        for conn in opened:
            await conn.close()
        with contextlib.suppress(Exception):
            for schema in schemas:
                await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()
