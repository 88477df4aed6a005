"""The figure modules; `load()` imports them, which registers their figures in order.

To add figures: write a module here with `@figure(...)`-decorated async functions that each
return one run's samples, and add its name to MODULES (their order is the order of the runs).
"""

from __future__ import annotations

import importlib

MODULES = [
    "kafka",
    "http",
    "postgres",
    "outbox_notify",
    "notifier",
    "interactions",
    "directory",
    "directory_import",
    "directory_import_first",
    "directory_import_memory",
    "directory_person_import",
    "pipeline",
    "campaigns",
    "mailings",
    "printing",
    "automation",
    "state",
]


def load() -> None:
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}")
