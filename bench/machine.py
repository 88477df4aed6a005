"""What the figures were measured on."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg

PACKAGES = [
    "aiokafka",
    "faststream",
    "sqlalchemy",
    "asyncpg",
    "pydantic",
    "fastapi",
    "uvicorn",
    "httpx",
    "uvloop",
]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def kafka_version(repo: Path) -> str:
    """The version of the local broker's jars (deploy/local/kafka.sh); else 'unknown'."""
    state = Path(os.environ.get("CLIENTELE_STATE_DIR") or repo / ".state")
    for jar in sorted((state / "kafka" / "libs").glob("kafka-server-[0-9]*.jar")):
        found = re.fullmatch(r"kafka-server-(.+)\.jar", jar.name)
        if found:
            return found.group(1)
    return "unknown (broker not started by deploy/local)"


def _git(repo: Path) -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit} (with uncommitted changes)" if dirty else commit


async def describe(repo: Path, database_url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(database_url)
    try:
        postgres = str(await conn.fetchval("SELECT version()"))
    finally:
        await conn.close()
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "kafka": kafka_version(repo),
        "postgresql": postgres,
        "packages": versions,
        "git": _git(repo),
    }
