"""`clientele migrate|serve SERVICE`: one entry point for every service's migrations and server.

The server and the migrations are imported when a command runs, not with this module: worker
processes started by a service (the directory's import readers) load the main script again,
and should not carry uvicorn, SQLAlchemy and Alembic for it.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

from clientele_shared.events.catalog import SERVICES


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="clientele", description=__doc__)
    parser.add_argument("command", choices=["migrate", "serve"])
    parser.add_argument("service", choices=SERVICES)
    parser.add_argument("--host", help="listen address (default: HTTP_HOST)")
    parser.add_argument("--port", type=int, help="listen port (default: HTTP_PORT)")
    args = parser.parse_args(argv)
    module = importlib.import_module(f"clientele_{args.service}.app")
    settings = module.load_settings()
    if args.command == "migrate":
        from clientele_shared.db import upgrade

        upgrade(module.MIGRATIONS, settings.resolved_database_url())
        return
    import uvicorn

    uvicorn.run(
        f"clientele_{args.service}.app:create_app",
        factory=True,
        host=args.host or settings.http_host,
        port=args.port or settings.http_port,
        log_config=None,
        access_log=False,
    )
