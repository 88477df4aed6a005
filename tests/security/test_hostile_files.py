"""Hostile and real-world files replayed against the APIs that take files: the directory's
import and list upload, interactions' e-mail capture and attachments.

Every answer is a success or an RFC 9457 problem with a 4xx status (never a 5xx, never a dropped
connection), and while the files are processed a poller keeps asking each service's
``/health/live``: every poll must be answered (within a generous 60 s: the point is that the
service is not blocked, not how fast it is on a shared machine).
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_testkit.infra import Infrastructure
from clientele_testkit.processes import ServiceProcess, wait_for

from tests.security import hostile_files

pytestmark = pytest.mark.integration
VENV_BIN = Path(sys.executable).parent
STARTUP_SECONDS = 300  # several processes importing at once on two busy cores
POLL_TIMEOUT = 60.0
JOB_SECONDS = 300


class Poller:
    """Asks ``/health/live`` of each service, one after the other, until stopped."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.answered = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=POLL_TIMEOUT) as client:
            while not self._stop.is_set():
                for url in self.urls:
                    try:
                        status = client.get(f"{url}/health/live").status_code
                    except httpx.HTTPError as exc:
                        self.failures.append(f"{url}: {exc!r}")
                        continue
                    if status == 200:
                        self.answered += 1
                    else:
                        self.failures.append(f"{url}: {status}")
                self._stop.wait(0.2)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(POLL_TIMEOUT + 5)


@pytest.fixture(scope="module")
def services(
    infra: Infrastructure,
    service_env: dict[str, str],
    migrated: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, str]]:
    logs = tmp_path_factory.mktemp("hostile")
    env = {
        "interactions": {
            "ATTACHMENTS_DIR": str(logs / "attachments"),
            "OVERDUE_WORKER": "false",
            "OWN_EMAIL_DOMAINS": '["ourco.example"]',
        },
        "directory": {},
    }
    started = {
        name: ServiceProcess(
            name,
            {**service_env, "DATABASE_URL": infra.test_database_url(name), **extra},
            logs,
            VENV_BIN,
        )
        for name, extra in env.items()
    }
    try:
        for process in started.values():
            wait_for(process.ready, STARTUP_SECONDS, f"{process.name} to be ready")
        yield {name: process.url for name, process in started.items()}
    finally:
        for process in started.values():
            process.stop()


def _headers(issuer: TokenIssuer, direction: str) -> dict[str, str]:
    token = issuer.mint("hostile", roles=["head_of_sales"], directions=[direction])
    return {"Authorization": f"Bearer {token}"}


def _verdict(name: str, response: httpx.Response) -> str | None:
    """What is wrong with an answer to a file, or None."""
    if 200 <= response.status_code < 300:
        return None
    media = response.headers.get("content-type", "")
    if 400 <= response.status_code < 500 and media.startswith("application/problem+json"):
        problem: dict[str, Any] = response.json()
        if problem.get("status") == response.status_code and problem.get("type"):
            return None
    return f"{name}: {response.status_code} {media} {response.text[:300]}"


def _send(
    client: httpx.Client,
    name: str,
    jobs: list[tuple[str, str]] | None = None,
    **request: Any,
) -> str | None:
    try:
        response = client.post(**request)
    except httpx.HTTPError as exc:  # a dropped connection or no answer at all
        return f"{name}: {exc!r}"
    if jobs is not None and response.status_code == 202:
        jobs.append((name, response.headers["Location"]))
    return _verdict(name, response)


def _job_verdict(
    client: httpx.Client, base: str, name: str, location: str, headers: dict[str, str]
) -> str | None:
    """What is wrong with how an import job of a file ended, or None: it must end, and end
    either succeeded or with a 4xx problem (never an internal failure)."""
    deadline = time.monotonic() + JOB_SECONDS
    while time.monotonic() < deadline:
        try:
            job: dict[str, Any] = client.get(f"{base}{location}", headers=headers).json()
        except httpx.HTTPError as exc:
            return f"{name} job: {exc!r}"
        if job["state"] == "succeeded":
            return None
        if job["state"] in ("failed", "rejected", "cancelled"):
            problem = job["problem"] or {}
            if 400 <= problem.get("status", 500) < 500 and problem.get("type"):
                return None
            return f"{name} job: {job['state']} {problem}"
        time.sleep(0.5)
    return f"{name} job: still {job['state']} after {JOB_SECONDS} s"


@pytest.mark.timeout(1800)
def test_hostile_files_get_an_answer_and_the_services_keep_answering(
    services: dict[str, str], issuer: TokenIssuer
) -> None:
    http = httpx.Client(timeout=60)
    direction = f"h-{uuid.uuid4().hex[:8]}"
    headers = _headers(issuer, direction)
    directory, interactions = services["directory"], services["interactions"]
    admin = {"Authorization": f"Bearer {issuer.mint('root', roles=['admin'])}"}
    http.post(
        f"{directory}/v1/directions", json={"code": direction, "name": direction}, headers=admin
    ).raise_for_status()
    org = http.post(
        f"{directory}/v1/organizations",
        json={"legal_name": "ООО «Приёмка»", "directions": [direction]},
        headers=headers,
    ).json()["id"]
    the_list = http.post(
        f"{directory}/v1/lists",
        json={"name": "Приёмка", "directions": [direction]},
        headers=headers,
    ).json()["id"]
    wait_for(
        lambda: http.get(f"{interactions}/v1/clients/{org}", headers=headers).status_code == 200,
        90,
        "the client card in interactions",
    )
    contact = http.post(
        f"{interactions}/v1/interactions",
        json={"organization_id": org, "kind": "call", "subject": "Files"},
        headers=headers,
    ).json()["interaction"]["id"]

    http.close()
    failures: list[str | None] = []
    jobs: list[tuple[str, str]] = []  # an import answers 202 and runs as a job (ADR 41)
    sent = 0
    with Poller([directory, interactions]) as poller, httpx.Client(timeout=300) as client:
        for name, data in hostile_files.spreadsheets():
            failures.append(
                _send(
                    client,
                    f"import {name}",
                    url=f"{directory}/v1/organizations/import",
                    files={"file": (name, data, "application/octet-stream")},
                    data={"mode": "dry_run"},
                    headers=headers,
                    jobs=jobs,
                )
            )
            failures.append(
                _send(
                    client,
                    f"list upload {name}",
                    url=f"{directory}/v1/lists/{the_list}/members/upload",
                    files={"file": (name, data, "application/octet-stream")},
                    headers={**headers, "If-Match": "*"},
                )
            )
            sent += 2
        for name, data in [*hostile_files.emails(), *hostile_files.outlook()]:
            failures.append(
                _send(
                    client,
                    f"capture {name}",
                    url=f"{interactions}/v1/interactions/email",
                    files={"file": (name, data, "application/octet-stream")},
                    data={"organization_id": org},
                    headers=headers,
                )
            )
            sent += 1
        for name, data in hostile_files.attachments():
            failures.append(
                _send(
                    client,
                    f"attachment {name!r}",
                    url=f"{interactions}/v1/interactions/{contact}/attachments",
                    files={"file": (name, data, "application/octet-stream")},
                    headers=headers,
                )
            )
            sent += 1
        failures.extend(_job_verdict(client, directory, name, at, headers) for name, at in jobs)
    found = [failure for failure in failures if failure is not None]
    assert sent > 100, sent
    assert poller.answered > 0, "the poller never got an answer"
    assert not poller.failures, poller.failures[:10]
    assert not found, "\n".join(found)
