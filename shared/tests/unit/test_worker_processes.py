"""A pool's workers end with the service process that started them, even when it is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

PARENT = textwrap.dedent(
    """
    import multiprocessing, os, sys, time
    from concurrent.futures import ProcessPoolExecutor
    from clientele_shared.worker_processes import end_with_parent

    if __name__ == "__main__":
        initializer = end_with_parent if sys.argv[1] == "watched" else None
        pool = ProcessPoolExecutor(
            2, mp_context=multiprocessing.get_context("spawn"), initializer=initializer
        )
        print(pool.submit(os.getpid).result(), flush=True)
        time.sleep(600)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie waits for its reaper: it has ended
        return stat.read().split()[2] != "Z"


def _orphan_after_killing_the_parent(mode: str) -> int:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, mode], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    worker = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    return worker


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_a_watched_worker_ends_when_its_parent_is_killed() -> None:
    worker = _orphan_after_killing_the_parent("watched")
    deadline = time.monotonic() + 60
    while _alive(worker):
        assert time.monotonic() < deadline, "the worker outlived its killed parent"
        time.sleep(0.1)


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_an_unwatched_worker_would_stay_behind() -> None:
    """The failure the watch prevents (so the test above can fail)."""
    worker = _orphan_after_killing_the_parent("unwatched")
    try:
        time.sleep(2)
        assert _alive(worker)
    finally:
        os.kill(worker, signal.SIGKILL)
