"""Worker processes of a service process (parsers, file readers) that do not outlive it."""

from __future__ import annotations

import multiprocessing
import os
import threading
from multiprocessing.connection import wait


def end_with_parent() -> None:
    """In a pool's worker: exit as soon as the process that started it is gone.

    A pool's idle worker waits for work forever; when its service process is killed (SIGKILL,
    the OOM killer) nobody shuts the pool down, and the workers would stay behind. Use it as the
    pool's ``initializer`` (or call it from one).
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    sentinel = parent.sentinel

    def orphaned() -> None:
        wait([sentinel])
        os._exit(1)

    threading.Thread(target=orphaned, name="parent-watch", daemon=True).start()
