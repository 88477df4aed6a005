"""`clientele migrate|serve|rebuild|republish SERVICE`: one entry point for every service.

* ``migrate SERVICE``, ``serve SERVICE``: its migrations and its server;
* ``rebuild SERVICE READ_MODEL``: load a read model from its state topic aside and swap it in,
  safe while the service serves (ADR 18);
* ``republish SERVICE ENTITY``: the owner stages the state record of every row of an entity,
  rate-limited; consumers apply only what is newer than what they have.

The server and the migrations are imported when a command runs, not with this module: worker
processes started by a service (the directory's import readers) load the main script again,
and should not carry uvicorn, SQLAlchemy and Alembic for it.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from clientele_shared.events.catalog import SERVICES


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="clientele", description=__doc__)
    parser.add_argument("command", choices=["migrate", "serve", "rebuild", "republish"])
    parser.add_argument("service", choices=SERVICES)
    parser.add_argument("name", nargs="?", help="the read model (rebuild) or entity (republish)")
    parser.add_argument("--host", help="listen address (default: HTTP_HOST)")
    parser.add_argument("--port", type=int, help="listen port (default: HTTP_PORT)")
    parser.add_argument(
        "--rate", type=float, default=2000.0, help="republish: state records per second at most"
    )
    args = parser.parse_args(argv)
    module = importlib.import_module(f"clientele_{args.service}.app")
    settings = module.load_settings()
    if args.command == "migrate":
        from clientele_shared.db import upgrade

        upgrade(module.MIGRATIONS, settings.resolved_database_url())
        return
    if args.command in ("rebuild", "republish"):
        run = _rebuild if args.command == "rebuild" else _republish
        raise SystemExit(asyncio.run(run(parser, module, settings, args)))
    import uvicorn

    uvicorn.run(
        f"clientele_{args.service}.app:create_app",
        factory=True,
        host=args.host or settings.http_host,
        port=args.port or settings.http_port,
        log_config=None,
        access_log=False,
    )


def _choose(parser: argparse.ArgumentParser, kind: str, name: str | None, known: Any) -> Any:
    if name not in known:
        parser.error(f"{kind}: one of {sorted(known) or 'none for this service'}")
    return known[name]


async def _rebuild(
    parser: argparse.ArgumentParser, module: ModuleType, settings: Any, args: Any
) -> int:
    from clientele_shared.db import create_engine
    from clientele_shared.events.catalog import REGISTRY
    from clientele_shared.events.state import StateLoader
    from clientele_shared.rebuild import rebuild

    read_model = _choose(parser, "read model", args.name, getattr(module, "READ_MODELS", {}))
    REGISTRY.check_consume(settings.service_name, read_model.topic)
    loader = StateLoader(
        settings.kafka_bootstrap_servers,
        read_model.topic,
        REGISTRY,
        **settings.kafka_security().client_options(),
    )
    engine = create_engine(settings.resolved_database_url())
    try:
        await rebuild(engine, read_model, loader)
    finally:
        await engine.dispose()
    return 0


async def _republish(
    parser: argparse.ArgumentParser, module: ModuleType, settings: Any, args: Any
) -> int:
    from clientele_shared.db import create_engine
    from clientele_shared.events.catalog import REGISTRY
    from clientele_shared.events.outbox import Outbox
    from clientele_shared.rebuild import republish

    outbox = Outbox(settings.service_name, REGISTRY, module.metadata.tables["outbox"])
    entities = module.state_entities(outbox) if hasattr(module, "state_entities") else {}
    entity = _choose(parser, "entity", args.name, entities)
    engine = create_engine(settings.resolved_database_url())
    try:
        await republish(engine, outbox, entity, rate=args.rate)
    finally:
        await engine.dispose()
    return 0
