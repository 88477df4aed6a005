"""Directions, employees and the built-in token issuer over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.catalog import EMPLOYEES, EMPLOYEES_STATE
from clientele_testkit.processes import ServiceProcess
from directory_testkit import TopicTail, admin, bearer, fresh_direction, problem, sales

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery staple"
MAX_ATTEMPTS = 3
CLIENT_MAX_ATTEMPTS = 8


@pytest.fixture(scope="module")
def directory_env() -> dict[str, str]:
    return {
        "LOGIN_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        "LOGIN_CLIENT_MAX_ATTEMPTS": str(CLIENT_MAX_ATTEMPTS),
        "LOGIN_WINDOW_SECONDS": "60",
    }


@pytest.fixture
async def client(directory: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    """A client from an address of its own, so sign-in counts of other tests never add up."""
    transport = httpx.AsyncHTTPTransport(local_address=_loopback())
    async with httpx.AsyncClient(base_url=directory.url, transport=transport, timeout=30) as http:
        yield http


def _loopback() -> str:
    """A random address of 127.0.0.0/8 (every one of them reaches 127.0.0.1 on Linux)."""
    return "127." + ".".join(str(random.randint(1, 254)) for _ in range(3))


async def _direction(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    code = fresh_direction()
    created = await client.post(
        "/v1/directions", json={"code": code, "name": f"Направление {code}"}, headers=headers
    )
    assert created.status_code == 201, created.text
    return code


async def _employee(
    client: httpx.AsyncClient, headers: dict[str, str], **fields: Any
) -> dict[str, Any]:
    body = {"email": f"{uuid.uuid4().hex[:8]}@corp.example", "name": "Сотрудник"} | fields
    response = await client.post("/v1/employees", json=body, headers=headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_directions_are_kept_by_administrators(
    client: httpx.AsyncClient, issuer: TokenIssuer, tail: Callable[[str], TopicTail]
) -> None:
    topic = await tail(EMPLOYEES).start()
    root = admin(issuer)
    me = sales(issuer, "north")
    problem(await client.post("/v1/directions", json={"code": "x1", "name": "X"}, headers=me), 403)
    code = await _direction(client, root)
    problem(
        await client.post("/v1/directions", json={"code": code, "name": "Y"}, headers=root), 409
    )
    problem(
        await client.post("/v1/directions", json={"code": "Bad Code", "name": "Y"}, headers=root),
        422,
    )
    url = f"/v1/directions/{code}"
    problem(await client.patch(url, json={"name": "Z"}, headers=me | {"If-Match": 'W/"1"'}), 403)
    problem(await client.patch(url, json={"name": "Z"}, headers=root), 428)
    renamed = await client.patch(
        url, json={"name": "Север", "archived": True}, headers=root | {"If-Match": 'W/"1"'}
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.headers["etag"] == 'W/"2"'
    problem(await client.patch(url, json={"name": "Q"}, headers=root | {"If-Match": 'W/"1"'}), 412)
    listed = {d["code"] for d in (await client.get("/v1/directions", headers=me)).json()}
    assert code not in listed
    archived = (await client.get("/v1/directions?include_archived=true", headers=me)).json()
    assert code in {d["code"] for d in archived}
    event = await topic.wait_for(
        lambda e: (
            e.type == "directory.direction.changed"
            and e.payload["code"] == code
            and e.payload["version"] == 2
        )
    )
    assert event.payload["changes"]["archived"] == {"old": False, "new": True}


async def test_employees_are_kept_by_administrators_and_seen_by_direction(
    client: httpx.AsyncClient, issuer: TokenIssuer, tail: Callable[[str], TopicTail]
) -> None:
    topic = await tail(EMPLOYEES).start()
    root = admin(issuer)
    north, south = await _direction(client, root), await _direction(client, root)
    boss = await _employee(client, root, name="Босс", roles=["head_of_sales"], directions=[north])
    worker = await _employee(
        client, root, name="Работник", roles=["sales"], directions=[north], manager_id=boss["id"]
    )
    other = await _employee(client, root, name="Южанин", roles=["sales"], directions=[south])
    assert worker["has_password"] is False
    assert "password_hash" not in worker

    problem(
        await client.post(
            "/v1/employees",
            json={"email": "a@b.example", "name": "A", "roles": ["sales"]},
            headers=sales(issuer, north),
        ),
        403,
    )
    for bad in (
        {"roles": ["service"]},
        {"roles": ["sales"], "directions": ["no-such-direction"]},
        {"roles": ["sales"], "manager_id": str(uuid.uuid4())},
        {"roles": ["sales"], "password": "short"},
    ):
        body = {"email": f"{uuid.uuid4().hex[:6]}@corp.example", "name": "X"} | bad
        problem(await client.post("/v1/employees", json=body, headers=root), 422)
    duplicate = {"email": worker["email"].upper(), "name": "Двойник", "roles": ["sales"]}
    problem(await client.post("/v1/employees", json=duplicate, headers=root), 409)
    # a manager loop is refused
    loop = await client.patch(
        f"/v1/employees/{boss['id']}",
        json={"manager_id": worker["id"]},
        headers=root | {"If-Match": 'W/"1"'},
    )
    problem(loop, 422)

    viewer = bearer(issuer, worker["id"], roles=["sales"], directions=[north])
    seen = {e["id"] for e in (await client.get("/v1/employees", headers=viewer)).json()}
    assert {boss["id"], worker["id"]} <= seen
    assert other["id"] not in seen
    problem(await client.get(f"/v1/employees/{other['id']}", headers=viewer), 404)
    problem(await client.get(f"/v1/employees/{other['id']}/audit", headers=viewer), 404)
    assert (await client.get("/v1/employees/me", headers=viewer)).json()["id"] == worker["id"]

    moved = await client.patch(
        f"/v1/employees/{worker['id']}",
        json={"directions": [south], "active": False},
        headers=root | {"If-Match": 'W/"1"'},
    )
    assert moved.status_code == 200, moved.text
    problem(
        await client.patch(
            f"/v1/employees/{worker['id']}",
            json={"name": "Y"},
            headers=viewer | {"If-Match": 'W/"2"'},
        ),
        403,
    )
    event = await topic.wait_for(
        lambda e: e.aggregate_id == worker["id"] and e.type == "directory.employee.updated"
    )
    assert event.payload["changes"] == {
        "directions": {"old": [north], "new": [south]},
        "active": {"old": True, "new": False},
    }
    assert set(event.directions) == {north, south}
    created = await topic.wait_for(
        lambda e: e.aggregate_id == worker["id"] and e.type == "directory.employee.created"
    )
    assert created.payload["manager_id"] == boss["id"]
    assert "password" not in str(created.payload)
    trail = (await client.get(f"/v1/employees/{worker['id']}/audit", headers=root)).json()
    assert [e["action"] for e in trail] == ["created", "updated"]


async def test_the_responsible_employee_must_exist(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    root = admin(issuer)
    direction = await _direction(client, root)
    employee = await _employee(client, root, roles=["sales"], directions=[direction])
    me = sales(issuer, direction)
    body = {"legal_name": "Ответственные", "directions": [direction]}
    problem(
        await client.post(
            "/v1/organizations",
            json=body | {"responsible_employee_id": str(uuid.uuid4())},
            headers=me,
        ),
        422,
    )
    ok = await client.post(
        "/v1/organizations", json=body | {"responsible_employee_id": employee["id"]}, headers=me
    )
    assert ok.status_code == 201, ok.text


async def test_signing_in_with_the_built_in_issuer(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    root = admin(issuer)
    direction = await _direction(client, root)
    employee = await _employee(
        client, root, roles=["sales"], directions=[direction], password=PASSWORD
    )
    assert employee["has_password"] is True
    login = {"email": employee["email"].upper(), "password": PASSWORD}
    answer = await client.post("/v1/auth/token", json=login)
    assert answer.status_code == 200, answer.text
    token = answer.json()
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 3600
    mine = {"Authorization": f"Bearer {token['access_token']}"}
    me = (await client.get("/v1/employees/me", headers=mine)).json()
    assert me["id"] == employee["id"]
    created = await client.post(
        "/v1/organizations", json={"legal_name": "Моя", "directions": [direction]}, headers=mine
    )
    assert created.status_code == 201, created.text
    jwks = (await client.get("/.well-known/jwks.json")).json()
    assert jwks["keys"][0]["kid"] == issuer.kid

    # employees change their own password with the current one; never another's
    url = f"/v1/employees/{employee['id']}/password"
    new = "an even better passphrase"
    problem(
        await client.put(url, json={"password": new, "current_password": "wrong"}, headers=mine),
        403,
    )
    other = await _employee(client, root, roles=["sales"], directions=[direction])
    problem(
        await client.put(
            f"/v1/employees/{other['id']}/password", json={"password": new}, headers=mine
        ),
        403,
    )
    changed = await client.put(
        url, json={"password": new, "current_password": PASSWORD}, headers=mine
    )
    assert changed.status_code == 204, changed.text
    problem(await client.post("/v1/auth/token", json=login), 401)
    assert (await client.post("/v1/auth/token", json=login | {"password": new})).status_code == 200

    # unknown e-mails, no password, deactivated employees: the same 401
    problem(
        await client.post("/v1/auth/token", json={"email": "nobody@corp.example", "password": new}),
        401,
    )
    problem(
        await client.post("/v1/auth/token", json={"email": other["email"], "password": new}), 401
    )
    off = await client.patch(
        f"/v1/employees/{employee['id']}",
        json={"active": False},
        headers=root | {"If-Match": 'W/"1"'},
    )
    assert off.status_code == 200, off.text
    problem(await client.post("/v1/auth/token", json=login | {"password": new}), 401)
    problem(await client.post("/v1/auth/token", json={"email": "x"}), 422)


async def test_sign_in_attempts_are_limited_per_email(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    root = admin(issuer)
    target = await _employee(client, root, roles=["sales"], password=PASSWORD)
    bystander = await _employee(client, root, roles=["sales"], password=PASSWORD)
    wrong = {"email": target["email"], "password": "guess guess guess"}
    answers = await asyncio.gather(
        *(client.post("/v1/auth/token", json=wrong) for _ in range(MAX_ATTEMPTS + 2))
    )
    assert sorted(a.status_code for a in answers) == [401] * MAX_ATTEMPTS + [429, 429]
    limited = await client.post("/v1/auth/token", json=wrong | {"password": PASSWORD})
    assert problem(limited, 429)["status"] == 429
    assert 0 < int(limited.headers["retry-after"]) <= 60
    # another e-mail is not affected
    ok = await client.post(
        "/v1/auth/token", json={"email": bystander["email"], "password": PASSWORD}
    )
    assert ok.status_code == 200, ok.text
    # nor is the target signing in from another address: the lock is no denial-of-service tool
    async with _from_address(client, _loopback()) as elsewhere:
        mine = await elsewhere.post("/v1/auth/token", json=wrong | {"password": PASSWORD})
        assert mine.status_code == 200, mine.text


async def test_one_password_sprayed_over_many_emails_is_limited_per_address(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    root = admin(issuer)
    victim = await _employee(client, root, roles=["sales"], password=PASSWORD)
    async with _from_address(client, _loopback()) as sprayer:
        answers = [
            await sprayer.post(
                "/v1/auth/token",
                json={"email": f"user{i}-{uuid.uuid4().hex[:6]}@corp.example", "password": "x"},
            )
            for i in range(CLIENT_MAX_ATTEMPTS + 2)
        ]
        assert [a.status_code for a in answers] == [401] * CLIENT_MAX_ATTEMPTS + [429, 429]
        assert "from this address" in problem(answers[-1], 429)["detail"]
        blocked = await sprayer.post(
            "/v1/auth/token", json={"email": victim["email"], "password": PASSWORD}
        )
        problem(blocked, 429)
    # successful sign-ins from a shared address (an office) do not use its allowance up
    async with _from_address(client, _loopback()) as office:
        for _ in range(CLIENT_MAX_ATTEMPTS + 2):
            signed_in = await office.post(
                "/v1/auth/token", json={"email": victim["email"], "password": PASSWORD}
            )
            assert signed_in.status_code == 200, signed_in.text


@contextlib.asynccontextmanager
async def _from_address(
    client: httpx.AsyncClient, address: str
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the same service whose connections come from another loopback address."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(
        base_url=client.base_url, transport=transport, timeout=30
    ) as other:
        yield other


async def test_every_change_of_an_employee_is_followed_by_its_state(
    client: httpx.AsyncClient, issuer: TokenIssuer, tail: Callable[[str], TopicTail]
) -> None:
    """ADR 18: the employees state topic holds the whole employee after each change, never
    the password."""
    states = await tail(EMPLOYEES_STATE).start()
    root = admin(issuer)
    north = await _direction(client, root)
    worker = await _employee(
        client, root, name="Работник", roles=["sales"], directions=[north], password="x" * 16
    )
    moved = await client.patch(
        f"/v1/employees/{worker['id']}",
        json={"active": False},
        headers=root | {"If-Match": 'W/"1"'},
    )
    assert moved.status_code == 200, moved.text
    snapshots = await states.events_of(worker["id"], 2)
    assert [(e.payload["version"], e.payload["active"]) for e in snapshots] == [
        (1, True),
        (2, False),
    ]
    assert snapshots[1].payload["revision"] > snapshots[0].payload["revision"]
    last = snapshots[1].payload
    assert (last["email"], last["name"], last["roles"], last["directions"]) == (
        worker["email"],
        "Работник",
        ["sales"],
        [north],
    )
    assert "password" not in str(last)
