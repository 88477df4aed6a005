"""`clientele migrate|serve SERVICE`: one entry point for every service's migrations and server."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

import uvicorn

from clientele_shared.db import upgrade
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
        upgrade(module.MIGRATIONS, settings.resolved_database_url())
        return
    uvicorn.run(
        f"clientele_{args.service}.app:create_app",
        factory=True,
        host=args.host or settings.http_host,
        port=args.port or settings.http_port,
        log_config=None,
        access_log=False,
    )
