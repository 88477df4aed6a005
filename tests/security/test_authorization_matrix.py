"""The authorization matrix: every operation of every service's OpenAPI, called by each role of
one direction (south) with the ids of records of another (north), created through the APIs.

For each operation that takes an id (path, query or a top-level body field), two requests that
differ only in the id: one names a north record, one a random id. They must answer alike (the
status and the problem's type, title, detail and errors, with the ids blanked), so nothing tells
a foreign record from a missing one; a 2xx answer must not carry a north id other than the one
asked about; and after the whole matrix every north record is as it was (same version). Roles
that see every direction (admin, security officer) are out of scope: they may read north by
design (ADR 31).

A new operation taking an id nobody seeded fails the test until it is seeded or listed in
``UNSEEDED`` with its reason, so the matrix keeps covering the whole API.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_testkit.infra import Infrastructure
from clientele_testkit.processes import ServiceProcess, wait_for
from cryptography.fernet import Fernet

pytestmark = pytest.mark.integration
VENV_BIN = Path(sys.executable).parent
STARTUP_SECONDS = 300  # several processes importing at once on two busy cores

SERVICES = ("directory", "interactions", "pipeline", "campaigns", "notifier")
ROLES = ("sales", "head_of_sales", "marketer")
"""Roles bound to their directions (admins and security officers see every direction)."""

SKIPPED = {
    "GET /v1/inbox/stream": "an endless server-sent-event stream (its access is tested in the "
    "notifier's tests)",
    "POST /v1/auth/token": "sign-in takes no record id; throttled, tested in the directory",
}

UNSEEDED = {
    "definition_id": "attribute definitions are company-wide, not of a direction",
    "code": "directions and kinds of marketing events are company-wide names, no secret",
    "kind": "result definitions are company-wide",
    "token": "a secret URL (a calendar feed; a fax's PDF or result for the gateway): by design",
    "notification_id": "the inbox is per recipient (filtered by the caller's subject)",
    "endpoint_id": "webhooks are for administrators only (403 before any look-up)",
    "delivery_id": "deliveries are for administrators and services only",
    "reminder_id": "reminders are for administrators and services only",
    "holiday_id": "the professional holidays calendar is company-wide, not of a direction",
}

FIXED = {"action": "cancel", "name": "letters"}
"""Path parameters that name no record (a mailing's verb, a printed PDF's name): the same value
in both requests."""


@dataclass
class North:
    """The north records, by the parameter names that name them (per service when the same
    name means different records), and how to read each back."""

    ids: dict[str, str] = field(default_factory=dict)
    by_service: dict[str, dict[str, str]] = field(default_factory=dict)
    readbacks: list[tuple[str, str]] = field(default_factory=list)

    def id_for(self, service: str, name: str) -> str | None:
        return self.by_service.get(service, {}).get(name) or self.ids.get(name)

    def all_ids(self) -> set[str]:
        found = set(self.ids.values())
        for names in self.by_service.values():
            found |= set(names.values())
        return found


def _bearer(issuer: TokenIssuer, subject: str, roles: list[str], directions: list[str]) -> Any:
    token = issuer.mint(subject, roles=roles, directions=directions, ttl_seconds=3600)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One client for the whole module (a new one per request costs a TLS context each)."""
    with httpx.Client(timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def services(
    infra: Infrastructure,
    service_env: dict[str, str],
    migrated: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, str]]:
    """The five services as processes on the test databases, sharing the broker."""
    logs: Path = tmp_path_factory.mktemp("matrix")
    extra = {
        "notifier": {"RUN_WORKERS": "false", "WEBHOOK_SECRETS_KEY": Fernet.generate_key().decode()},
        "interactions": {"ATTACHMENTS_DIR": str(logs / "attachments"), "OVERDUE_WORKER": "false"},
    }
    started: list[ServiceProcess] = []
    try:
        for name in SERVICES:
            env = {
                **service_env,
                "DATABASE_URL": infra.test_database_url(name),
                **extra.get(name, {}),
            }
            started.append(ServiceProcess(name, env, logs, VENV_BIN))
        for process in started:
            wait_for(process.ready, STARTUP_SECONDS, f"{process.name} to be ready")
        yield {name: process.url for name, process in zip(SERVICES, started, strict=True)}
    finally:
        for process in started:
            process.stop()


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), f"{response.request.url}: {response.text}"
    body: dict[str, Any] = response.json()
    return body


def _until_created(call: Callable[[], httpx.Response], what: str) -> dict[str, Any]:
    """Retry a create until the records it refers to reached the service's read models."""
    answers: list[httpx.Response] = []

    def attempt() -> bool:
        answers.append(call())
        return answers[-1].status_code in (200, 201)

    wait_for(attempt, 90, what)
    return _created(answers[-1])


EML = (
    "From: Unknown Sender <stranger-{tag}@elsewhere.example>\r\n"
    "To: Someone <someone-{tag}@elsewhere.example>\r\n"
    "Subject: Hello\r\n"
    "Message-ID: <{tag}@elsewhere.example>\r\n"
    "Date: Mon, 02 Mar 2026 10:15:00 +0300\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n\r\nBody\r\n"
)


@pytest.fixture(scope="module")
def world(
    services: dict[str, str], issuer: TokenIssuer, http: httpx.Client
) -> tuple[str, str, North]:
    """North's records, made through the APIs by north's own people: (north, south, records)."""
    tag = uuid.uuid4().hex[:8]
    north, south = f"n-{tag}", f"s-{tag}"
    admin = _bearer(issuer, "matrix-admin", ["admin"], [north])
    directory = services["directory"]
    for code in (north, south):
        _created(
            http.post(
                f"{directory}/v1/directions", json={"code": code, "name": code}, headers=admin
            )
        )
    employee = _created(
        http.post(
            f"{directory}/v1/employees",
            json={
                "email": f"n-{tag}@ourco.example",
                "name": "Север",
                "roles": ["sales"],
                "directions": [north],
            },
            headers=admin,
        )
    )["id"]
    seller = _bearer(issuer, employee, ["head_of_sales"], [north])
    org = _created(
        http.post(
            f"{directory}/v1/organizations",
            json={"legal_name": f"ООО «Север {tag}»", "directions": [north]},
            headers=seller,
        )
    )["id"]
    person = _created(
        http.post(
            f"{directory}/v1/persons",
            json={
                "last_name": "Северов",
                "emails": [f"p-{tag}@client.example"],
                "directions": [north],
                "employments": [{"organization_id": org, "position": "CEO"}],
            },
            headers=seller,
        )
    )
    person_id = person["id"]
    employment = person["employments"][0]["id"]
    the_list = _created(
        http.post(
            f"{directory}/v1/lists",
            json={"name": f"Север {tag}", "directions": [north]},
            headers=seller,
        )
    )["id"]
    _created(
        http.post(
            f"{directory}/v1/lists/{the_list}/members",
            json={"organization_ids": [org]},
            headers={**seller, "If-Match": 'W/"1"'},
        )
    )
    officer = _bearer(issuer, "matrix-officer", ["security_officer"], [north])
    entry = _created(
        http.post(
            f"{directory}/v1/unwanted",
            json={"email_domain": f"bad-{tag}.example", "reason": "spam", "decided_by": "security"},
            headers=officer,
        )
    )["id"]

    interactions = services["interactions"]
    due = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    interaction = _until_created(
        lambda: http.post(
            f"{interactions}/v1/interactions",
            json={
                "organization_id": org,
                "kind": "call",
                "status": "planned",
                "due_at": due,
                "person_ids": [person_id],
                "responsible_employee_id": employee,
                "subject": "Северный звонок",
            },
            headers=seller,
        ),
        "the north records in interactions",
    )["interaction"]["id"]
    attachment = _created(
        http.post(
            f"{interactions}/v1/interactions/{interaction}/attachments",
            files={"file": ("notes.txt", b"north notes", "text/plain")},
            headers=seller,
        )
    )["id"]
    _created(
        http.post(
            f"{interactions}/v1/interactions/email",
            files={"file": ("mail.eml", EML.format(tag=tag).encode(), "message/rfc822")},
            data={"organization_id": org},
            headers=seller,
        )
    )
    item = http.get(
        f"{interactions}/v1/unmatched-addresses", params={"organization_id": org}, headers=seller
    ).json()[0]["id"]

    pipeline_url = services["pipeline"]
    stages = [
        {"name": "Новая", "kind": "open"},
        {"name": "Выиграна", "kind": "won"},
        {"name": "Проиграна", "kind": "lost"},
    ]
    pipeline = _created(
        http.post(
            f"{pipeline_url}/v1/pipelines",
            json={"name": f"Север {tag}", "directions": [north], "stages": stages},
            headers=seller,
        )
    )
    deal = _until_created(
        lambda: http.post(
            f"{pipeline_url}/v1/deals",
            json={
                "pipeline_id": pipeline["id"],
                "organization_id": org,
                "title": "Северная сделка",
            },
            headers=seller,
        ),
        "the north organization in the pipeline",
    )["id"]
    rule = _created(
        http.post(
            f"{pipeline_url}/v1/automation/rules",
            json={
                "pipeline_id": pipeline["id"],
                "name": "Северное правило",
                "trigger": {"kind": "manual"},
                "actions": [{"kind": "add_tags", "tags": ["север"]}],
            },
            headers=seller,
        )
    )["id"]

    campaigns = services["campaigns"]
    campaign = _created(
        http.post(
            f"{campaigns}/v1/campaigns",
            json={
                "kind": "seminar",
                "title": f"Северный семинар {tag}",
                "planned_start": "2026-03-10T10:00:00+03:00",
                "planned_end": "2026-03-10T18:00:00+03:00",
                "directions": [north],
            },
            headers=seller,
        )
    )
    added: list[dict[str, Any]] = []

    def add_participant() -> bool:
        """Added once both reached campaigns' read models (refused as unknown before)."""
        answer = http.post(
            f"{campaigns}/v1/campaigns/{campaign['id']}/participants",
            json={"participants": [{"organization_id": org, "person_id": person_id}]},
            headers=seller,
        )
        assert answer.status_code == 200, answer.text
        added.extend(answer.json()["added"])
        return bool(added)

    # a busy machine: five services start and the state topics reach campaigns
    wait_for(add_participant, 180, "the north organization and person in campaigns")
    participant_id = added[0]["id"]
    resolution = _until_created(
        lambda: http.post(
            f"{campaigns}/v1/campaigns/{campaign['id']}/list-resolutions",
            json={"list_id": the_list},
            headers=seller,
        ),
        "the north list in campaigns",
    )["resolution"]["id"]
    deadline = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    task = _until_created(
        lambda: http.post(
            f"{pipeline_url}/v1/tasks",
            json={
                "title": "Северная задача",
                "deadline": deadline,
                "assignee_employee_id": employee,
                "deal_id": deal,
            },
            headers=seller,
        ),
        "the north employee in the pipeline",
    )["id"]
    lead = _created(
        http.post(
            f"{pipeline_url}/v1/leads",
            json={"source": "phone", "direction": north, "email": f"lead-{tag}@north.example"},
            headers=seller,
        )
    )["id"]
    calendar = f"{pipeline_url}/v1/automation/calendars/{north}"
    _created(http.put(calendar, json={}, headers=seller))
    mailing = _created(
        http.post(
            f"{campaigns}/v1/mailings",
            json={
                "title": f"Северная рассылка {tag}",
                "directions": [north],
                "template": {"subject": "Новости", "text": "Отписаться: {{ unsubscribe_url }}"},
                "audience": {"kind": "organizations", "organization_ids": [org]},
            },
            headers=seller,
        )
    )["id"]
    template = _created(
        http.post(
            f"{campaigns}/v1/mail-templates",
            json={
                "name": f"Северный шаблон {tag}",
                "directions": [north],
                "template": {"subject": "Новости", "text": "Текст"},
            },
            headers=seller,
        )
    )["id"]
    greeting = _created(
        http.post(
            f"{campaigns}/v1/greetings",
            json={
                "title": f"Северное поздравление {tag}",
                "directions": [north],
                "occasion": {"kind": "birthday"},
                "template": {"subject": "С днём рождения", "text": "{{ unsubscribe_url }}"},
                "active": False,
            },
            headers=seller,
        )
    )["id"]
    document = _created(
        http.post(
            f"{campaigns}/v1/campaigns/{campaign['id']}/documents",
            files={"file": ("programme.txt", b"north programme", "text/plain")},
            headers=seller,
        )
    )["id"]

    queued = http.post(
        f"{directory}/v1/organizations/import",
        files={"file": ("north.csv", "Наименование;ИНН\nСеверное;\n".encode(), "text/csv")},
        data={"mode": "dry_run"},
        headers=seller,
    )
    assert queued.status_code == 202, queued.text
    job = queued.json()["id"]
    job_url = f"{directory}/v1/organizations/imports/{job}"
    wait_for(
        lambda: http.get(job_url, headers=seller).json()["state"] not in ("queued", "running"),
        timeout=120,
        what="the north import job to end",
    )

    records = North(
        ids={
            "org_id": org,
            "organization_id": org,
            "person_id": person_id,
            "employment_id": employment,
            "list_id": the_list,
            "entry_id": entry,
            "employee_id": employee,
            "responsible_employee_id": employee,
            "interaction_id": interaction,
            "attachment_id": attachment,
            "item_id": item,
            "pipeline_id": pipeline["id"],
            "deal_id": deal,
            "rule_id": rule,
            "campaign_id": campaign["id"],
            "participant_id": participant_id,
            "resolution_id": resolution,
            "task_id": task,
            "lead_id": lead,
            "mailing_id": mailing,
            "document_id": document,
            "job_id": job,
            "template_id": template,
            "greeting_id": greeting,
        },
        by_service={
            "pipeline": {"stage_id": pipeline["stages"][0]["id"], "scope": north},
            "campaigns": {"stage_id": campaign["stages"][0]["id"]},
        },
        readbacks=[
            ("directory", f"/v1/organizations/{org}"),
            ("directory", f"/v1/persons/{person_id}"),
            ("directory", f"/v1/lists/{the_list}"),
            ("directory", f"/v1/employees/{employee}"),
            ("interactions", f"/v1/interactions/{interaction}"),
            ("interactions", f"/v1/unmatched-addresses/{item}"),
            ("pipeline", f"/v1/pipelines/{pipeline['id']}"),
            ("pipeline", f"/v1/deals/{deal}"),
            ("pipeline", f"/v1/leads/{lead}"),
            ("pipeline", f"/v1/automation/rules/{rule}"),
            ("campaigns", f"/v1/campaigns/{campaign['id']}"),
            ("campaigns", f"/v1/campaigns/{campaign['id']}/participants/{participant_id}"),
            ("pipeline", f"/v1/tasks/{task}"),
            ("pipeline", f"/v1/automation/calendars/{north}"),
            ("campaigns", f"/v1/mailings/{mailing}"),
            ("directory", f"/v1/organizations/imports/{job}"),
            ("campaigns", f"/v1/campaigns/{campaign['id']}/documents/{document}"),
            ("campaigns", f"/v1/mail-templates/{template}"),
            ("campaigns", f"/v1/greetings/{greeting}"),
        ],
    )
    return north, south, records


def _state(
    http: httpx.Client, services: dict[str, str], records: North, admin: dict[str, str]
) -> dict[str, Any]:
    """Each north record as its owner reads it (its version, or the whole body)."""
    state: dict[str, Any] = {}
    for service, path in records.readbacks:
        response = http.get(services[service] + path, headers=admin, timeout=30)
        body = response.json()
        state[path] = (response.status_code, body.get("version", body), body.get("status"))
    return state


def _resolve(raw: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A schema with its ``$ref`` followed and a nullable ``anyOf`` reduced to its value."""
    while True:
        if "$ref" in schema:
            schema = raw["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        elif "anyOf" in schema or "oneOf" in schema:
            options: list[dict[str, Any]] = schema.get("anyOf") or schema.get("oneOf") or [{}]
            schema = next((o for o in options if o.get("type") != "null"), options[0])
        elif "allOf" in schema:
            schema = schema["allOf"][0]
        else:
            return schema


_FORMATS: dict[str, Callable[[], str]] = {
    "uuid": lambda: str(uuid.uuid4()),
    "date-time": lambda: (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
    "date": lambda: "2026-03-02",
    "email": lambda: "someone@example.com",
    "uri": lambda: "https://example.com/hook",
}


def _simplest(raw: dict[str, Any], schema: dict[str, Any]) -> Any:
    """The simplest value a schema accepts: required fields only, the least of each type
    (deterministic; business rules may still refuse it, alike for both ids)."""
    schema = _resolve(raw, schema)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    kind = schema.get("type", "object")
    if kind == "object" or "properties" in schema:
        return {
            name: _simplest(raw, schema["properties"][name])
            for name in schema.get("required", [])
            if name in schema.get("properties", {})
        }
    if kind == "array":
        return [_simplest(raw, schema.get("items", {})) for _ in range(schema.get("minItems", 0))]
    if kind == "integer":
        return int(schema.get("minimum", schema.get("exclusiveMinimum", -1) + 1))
    if kind == "number":
        return float(schema.get("minimum", 0))
    if kind == "boolean":
        return False
    if schema.get("format") in _FORMATS:
        return _FORMATS[schema["format"]]()
    return "a" * max(1, schema.get("minLength", 1))


@dataclass
class Probe:
    """One operation's simplest request, with the id-bearing places to fill in."""

    label: str
    method: str
    path_template: str
    query: dict[str, Any]
    media: str | None
    body: Any
    path: list[str]
    query_ids: list[str]
    body_ids: list[str]


def _probe(
    service: str, raw: dict[str, Any], label: str, definition: dict[str, Any], records: North
) -> Probe:
    method, path_template = label.split(" ", 1)
    params = definition.get("parameters", [])
    query = {
        p["name"]: _simplest(raw, p.get("schema", {}))
        for p in params
        if p["in"] == "query" and p.get("required")
    }
    content = definition.get("requestBody", {}).get("content", {})
    media = next(iter(content), None)
    schema = _resolve(raw, content[media]["schema"]) if media else {}
    body = _simplest(raw, schema) if media else None
    return Probe(
        label=label,
        method=method,
        path_template=path_template,
        query=query,
        media=media,
        body=body,
        path=[p["name"] for p in params if p["in"] == "path"],
        query_ids=[
            p["name"] for p in params if p["in"] == "query" and records.id_for(service, p["name"])
        ],
        body_ids=[n for n in schema.get("properties", {}) if records.id_for(service, n)],
    )


def _probes(service: str, raw: dict[str, Any], records: North) -> tuple[list[Probe], list[str]]:
    """The operations of one service that take a record id; the unseeded ones, as failures."""
    probes, missing = [], []
    for path_template, operations in raw["paths"].items():
        for method, definition in operations.items():
            label = f"{method.upper()} {path_template}"
            if label in SKIPPED:
                continue
            probe = _probe(service, raw, label, definition, records)
            for name in probe.path:
                if records.id_for(service, name) is None and name not in UNSEEDED | FIXED.keys():
                    missing.append(f"{service} {label}: no north record for {{{name}}}")
            if any(name in UNSEEDED for name in probe.path):
                continue
            if probe.path or probe.query_ids or probe.body_ids:
                probes.append(probe)
    return probes, missing


def _request(
    http: httpx.Client,
    url: str,
    probe: Probe,
    ids: dict[str, str],
    headers: dict[str, str],
) -> httpx.Response:
    """Send the probe's request with ``ids`` in its id-bearing places."""
    path = probe.path_template
    for name in probe.path:
        path = path.replace(f"{{{name}}}", ids[name])
    query = {**probe.query, **{n: ids[n] for n in probe.query_ids}}
    body = probe.body
    if isinstance(body, dict):
        body = {**body, **{n: ids[n] for n in probe.body_ids}}
    request: dict[str, Any] = {"params": query, "headers": headers}
    if probe.media == "application/json":
        request["json"] = body
    elif probe.media == "multipart/form-data":
        fields = body if isinstance(body, dict) else {}
        request["files"] = {"file": ("probe.csv", b"INN\r\n7707083893\r\n", "text/csv")}
        request["data"] = {k: str(v) for k, v in fields.items() if k != "file"}
    elif probe.media is not None:
        request["data"] = body if isinstance(body, dict) else {}
    return http.request(probe.method, url + path, **request)


def _answer(response: httpx.Response, ids: set[str]) -> tuple[Any, ...]:
    """What a caller learns from an answer, with the ids asked about blanked."""

    def blank(value: Any) -> str:
        text = str(value)
        for asked in ids:
            text = text.replace(asked, "<id>")
        return text

    if "problem+json" not in response.headers.get("content-type", ""):
        return (response.status_code,)
    problem = response.json()
    errors = [
        (tuple(e.get("location", ())), blank(e.get("message"))) for e in problem.get("errors", [])
    ]
    return (
        response.status_code,
        problem.get("type"),
        problem.get("title"),
        blank(problem.get("detail")),
        tuple(errors),
    )


@pytest.mark.timeout(1800)
def test_no_role_of_another_direction_reaches_or_detects_a_record(
    services: dict[str, str], world: tuple[str, str, North], issuer: TokenIssuer, http: httpx.Client
) -> None:
    north, south, records = world
    owner = _bearer(issuer, "matrix-admin", ["admin"], [north])
    before = _state(http, services, records, owner)
    north_ids = records.all_ids()
    failures: list[str] = []
    calls = 0
    for service in SERVICES:
        raw = http.get(f"{services[service]}/openapi.json", timeout=30).json()
        probes, missing = _probes(service, raw, records)
        failures += missing
        for role in ROLES:
            headers = {
                **_bearer(issuer, f"matrix-{role}", [role], [south]),
                "If-Match": 'W/"1"',
            }
            for probe in probes:
                answers = []
                names = {*probe.path, *probe.query_ids, *probe.body_ids}
                for foreign in (True, False):
                    ids = {
                        n: FIXED.get(n)
                        or ((records.id_for(service, n) or "") if foreign else str(uuid.uuid4()))
                        for n in names
                    }
                    response = _request(http, services[service], probe, ids, headers)
                    calls += 1
                    answers.append((response, _answer(response, set(ids.values()))))
                (theirs, seen), (_, random) = answers
                where = f"{service} {probe.label} as {role}"
                if seen != random:
                    failures.append(f"{where}: north id {seen} but random id {random}")
                if 200 <= theirs.status_code < 300:
                    asked = {records.id_for(service, n) for n in names}
                    leaked = [i for i in north_ids - asked if i in theirs.text]
                    if leaked:
                        failures.append(f"{where}: a 2xx carries north ids {leaked}")
    after = _state(http, services, records, owner)
    changed = [path for path in before if before[path] != after[path]]
    assert calls > 200, calls  # the matrix really ran
    assert not changed, f"north records changed: {changed}"
    assert not failures, "\n".join(failures)
