"""HTTP baselines: what later figures of the services' endpoints are compared with."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from clientele_testkit.processes import free_port

from bench.processes import Proc
from bench.registry import Context, Metric, figure
from bench.stats import percentile


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def serve_bare_app(ctx: Context) -> Proc:
    """Start bench.httpapp under uvicorn (as `clientele serve` does: no access log)."""
    port = free_port()
    server = await ctx.processes.start(
        "uvicorn",
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.httpapp:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=dict(os.environ),
        cwd=ctx.repo,
    )
    server.url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as client, asyncio.timeout(30):
        while True:
            server.check()
            try:
                if (await client.get(f"{server.url}/ping")).status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


@dataclass
class Load:
    requests: int
    latencies: list[float]
    """Milliseconds, of the requests sent after the warm-up."""
    seconds: float
    client_cpu: float
    """Cores the bench process (the client) used while measuring."""
    server_cpu: float
    """Cores the server process used while measuring."""


async def hammer(
    url: str, server_pid: int, concurrency: int, seconds: float, warmup: float
) -> Load:
    """`concurrency` workers, each with its own httpx.AsyncClient (one keep-alive connection),
    send GETs back to back for `warmup` + `seconds` s; the requests sent after the warm-up count.

    One AsyncClient per worker: a single AsyncClient pooling 32 connections spends most of its
    time in its pool (about a quarter of the rate on this machine) and would measure itself."""
    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    marks: list[tuple[float, float]] = []

    async def worker(client: httpx.AsyncClient, measuring: float, stop: float) -> None:
        while (sent := loop.time()) < stop:
            response = await client.get(url)
            response.raise_for_status()
            if sent >= measuring:
                latencies.append((loop.time() - sent) * 1000)

    async def mark(measuring: float) -> None:
        """The CPU counters at the end of the warm-up, whether or not a request starts then."""
        await asyncio.sleep(max(measuring - loop.time(), 0))
        marks.append((time.process_time(), cpu_seconds(server_pid)))

    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(timeout=10))
            for _ in range(concurrency)
        ]
        # the clock starts once the clients exist: on a loaded machine, creating 32 of them
        # took longer than a quick run's whole window, and no request was ever measured
        measuring = loop.time() + warmup
        stop = measuring + seconds
        await asyncio.gather(mark(measuring), *(worker(c, measuring, stop) for c in clients))
        ended = loop.time()
        client_cpu, server_cpu = time.process_time(), cpu_seconds(server_pid)
    elapsed = ended - measuring
    (client_start, server_start) = marks[0]
    return Load(
        len(latencies),
        latencies,
        elapsed,
        (client_cpu - client_start) / elapsed,
        (server_cpu - server_start) / elapsed,
    )


@figure(
    "http-bare",
    "Baseline C: bare FastAPI endpoint",
    kind="baseline",
    description=(
        "GET /ping of a bare FastAPI app (no middleware, no database) served by uvicorn in its"
        " own process (one worker, uvloop/httptools when installed, no access log), driven from"
        " the bench process by `concurrency` workers sending back to back, each with its own"
        " httpx AsyncClient (one keep-alive connection; a single AsyncClient pooling 32"
        " connections is itself the bottleneck, at about a quarter of the rate), for `seconds` s"
        " after a `warmup_s` s warm-up. The client shares the cores with the server; when its"
        " CPU nears 1 core, the figure is bounded by the client, not the server."
    ),
    metrics=[
        Metric("req_per_s", "requests answered", "req/s"),
        Metric("p50_ms", "p50 latency", "ms", higher_is_better=False),
        Metric("p99_ms", "p99 latency", "ms", higher_is_better=False),
        Metric("client_cpu", "CPU of the client (bench process)", "cores"),
        Metric("server_cpu", "CPU of the server process", "cores"),
    ],
    params={"concurrency": 32, "seconds": 5.0, "warmup_s": 1.0},
    quick_params={"seconds": 2.0, "warmup_s": 0.5},
    timeout=90,
)
async def http_bare(ctx: Context) -> dict[str, float]:
    server = await serve_bare_app(ctx)
    load = await hammer(
        f"{server.url}/ping",
        server.process.pid,
        int(ctx.params["concurrency"]),
        float(ctx.params["seconds"]),
        float(ctx.params["warmup_s"]),
    )
    return {
        "req_per_s": load.requests / load.seconds,
        "p50_ms": percentile(load.latencies, 50),
        "p99_ms": percentile(load.latencies, 99),
        "client_cpu": load.client_cpu,
        "server_cpu": load.server_cpu,
    }
