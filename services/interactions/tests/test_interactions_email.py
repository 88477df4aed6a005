"""E-mail capture from a real Outlook .msg file and an .eml made with the standard library."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import httpx
import pytest
from clientele_shared.events.catalog import EMPLOYEES, PERSONS
from clientele_shared.events.schemas.directory import (
    EmployeeCreated,
    EmploymentChanged,
    PersonCreated,
)
from clientele_testkit.processes import wait_for
from interactions_testkit import Stack, bearer, directory_envelope, publish

pytestmark = pytest.mark.integration


def _post(url: str, **request: Any) -> httpx.Response:
    """A POST with room for the first capture, which starts the parser processes (longer than
    httpx's default 5 s on a busy machine)."""
    return httpx.post(url, timeout=60, **request)


SAMPLE_MSG = Path(__file__).parent / "data" / "sample.msg"
PDF = b"%PDF-1.4\n%%EOF\n"


def _maria(stack: Stack, org: uuid.UUID, direction: str, headers: dict[str, str]) -> uuid.UUID:
    """Maria Ivanova works at the client (the sender of sample.msg)."""
    person = uuid.uuid4()
    publish(
        stack.bootstrap,
        PERSONS,
        directory_envelope(
            "directory.person.created",
            PersonCreated(
                person_id=person,
                last_name="Иванова",
                first_name="Мария",
                emails=["M.Ivanova@client.example"],
                directions=[direction],
            ),
            person,
            [direction],
        ),
        directory_envelope(
            "directory.employment.changed",
            EmploymentChanged(
                employment_id=uuid.uuid4(),
                person_id=person,
                organization_id=org,
                change="created",
                version=1,
                position="CFO",
            ),
            person,
            [direction],
        ),
    )
    wait_for(
        lambda: bool(
            httpx.get(f"{stack.url}/v1/clients/{org}/summary", headers=headers).json()["people"]
        ),
        60,
        "the person to arrive",
    )
    return person


def _count(stack: Stack, org: uuid.UUID) -> int:
    return len(
        httpx.get(
            f"{stack.url}/v1/interactions",
            params={"organization_id": str(org)},
            headers=stack.admin,
        ).json()
    )


def test_an_outlook_msg_becomes_an_interaction(stack: Stack, direction: str) -> None:
    org = stack.client([direction])
    sales = bearer(stack.issuer, "alice", directions=[direction])
    maria = _maria(stack, org, direction, sales)
    url = f"{stack.url}/v1/interactions/email"
    content = SAMPLE_MSG.read_bytes()
    files = {"file": ("offer.msg", content, "application/vnd.ms-outlook")}

    response = _post(url, files=files, headers=sales)
    assert response.status_code == 201, response.text
    captured = response.json()
    interaction = captured["interaction"]
    assert interaction["organization_id"] == str(org), "the client follows from the sender"
    assert interaction["kind"] == "email"
    assert interaction["direction"] == "in"
    assert interaction["source"] == "msg"
    assert interaction["subject"] == "Коммерческое предложение"
    assert interaction["occurred_at"] == "2026-03-02T07:15:00Z"
    assert interaction["person_ids"] == [str(maria)]
    assert "коммерческое предложение" in interaction["notes"]
    assert captured["matched"] == [{"address": "m.ivanova@client.example", "person_id": str(maria)}]
    assert captured["unknown_addresses"] == ["stranger@unknown.example"]
    assert [a["filename"] for a in captured["attachments"]] == ["offer.pdf"]
    download = httpx.get(
        f"{stack.url}/v1/interactions/{interaction['id']}/attachments/"
        f"{captured['attachments'][0]['id']}",
        headers=sales,
    )
    assert download.content.startswith(b"%PDF-1.4")

    again = _post(url, files=files, headers=sales)
    assert again.status_code == 409
    assert again.json()["interaction_id"] == interaction["id"]
    assert _count(stack, org) == 1


def _eml(sender: str, recipients: str) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipients
    message["Cc"] = "Someone New <new.contact@client.example>"
    message["Subject"] = "Договор на 2026 год"
    message["Date"] = format_datetime(datetime(2026, 2, 1, 12, 0, tzinfo=UTC))
    message["Message-ID"] = make_msgid(domain="ourco.example")
    message.set_content("Мария, добрый день!\nДоговор во вложении.")
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="договор.pdf")
    message.add_attachment(
        b"MZ\x90\x00binary", maintype="application", subtype="x-msdownload", filename="tool.exe"
    )
    return message.as_bytes()


def test_an_eml_sent_by_us_is_outgoing(stack: Stack, direction: str) -> None:
    org = stack.client([direction])
    sales = bearer(stack.issuer, "alice", directions=[direction])
    maria = _maria(stack, org, direction, sales)
    eml = _eml("Alice <alice@ourco.example>", "Мария <m.ivanova@client.example>")
    response = _post(
        f"{stack.url}/v1/interactions/email",
        files={"file": ("contract.eml", eml, "message/rfc822")},
        data={"organization_id": str(org)},
        headers=sales,
    )
    assert response.status_code == 201, response.text
    captured = response.json()
    assert captured["interaction"]["direction"] == "out"
    assert captured["interaction"]["source"] == "eml"
    assert captured["interaction"]["subject"] == "Договор на 2026 год"
    assert captured["interaction"]["occurred_at"] == "2026-02-01T12:00:00Z"
    assert captured["interaction"]["person_ids"] == [str(maria)]
    assert captured["unknown_addresses"] == ["new.contact@client.example"]
    assert [a["filename"] for a in captured["attachments"]] == ["договор.pdf"]
    assert [s["filename"] for s in captured["skipped_attachments"]] == ["tool.exe"]


def _employee_known(stack: Stack, employee: uuid.UUID) -> bool:
    found = stack.scalar("SELECT count(*) FROM employees WHERE employee_id = :id", id=employee)
    return bool(found)


def test_mail_from_an_employee_is_outgoing_and_theirs(stack: Stack, direction: str) -> None:
    org = stack.client([direction])
    sales = bearer(stack.issuer, "alice", directions=[direction])
    maria = _maria(stack, org, direction, sales)
    employee = uuid.uuid4()
    address = f"{employee.hex[:8]}@personal-mail.example"
    publish(
        stack.bootstrap,
        EMPLOYEES,
        directory_envelope(
            "directory.employee.created",
            EmployeeCreated(
                employee_id=employee, email=address.upper(), name="Алиса", directions=[direction]
            ),
            employee,
            [direction],
        ),
    )
    wait_for(lambda: _employee_known(stack, employee), 60, "the employee to arrive")
    eml = _eml(f"Alice <{address}>", "m.ivanova@client.example")
    response = _post(
        f"{stack.url}/v1/interactions/email",
        files={"file": ("mail.eml", eml)},
        headers=sales,
    )
    assert response.status_code == 201, response.text
    captured = response.json()
    assert captured["interaction"]["organization_id"] == str(org)
    assert captured["interaction"]["direction"] == "out"
    assert captured["interaction"]["responsible_employee_id"] == str(employee)
    assert captured["interaction"]["person_ids"] == [str(maria)]
    assert address not in captured["unknown_addresses"]


def test_refused_captures_write_nothing(stack: Stack, direction: str) -> None:
    org = stack.client([direction])
    sales = bearer(stack.issuer, "alice", directions=[direction])
    url = f"{stack.url}/v1/interactions/email"
    eml = _eml("Nobody <nobody@nowhere.example>", "someone@else.example")

    undetermined = _post(url, files={"file": ("a.eml", eml)}, headers=sales)
    assert undetermined.status_code == 422
    assert undetermined.json()["unknown_addresses"] == [
        "nobody@nowhere.example",
        "someone@else.example",
        "new.contact@client.example",
    ]
    garbage = _post(
        url,
        files={"file": ("a.eml", b"just some text")},
        data={"organization_id": str(org)},
        headers=sales,
    )
    assert garbage.status_code == 422
    assert garbage.headers["content-type"] == "application/problem+json"
    fake_msg = _post(
        url, files={"file": ("a.msg", eml)}, data={"organization_id": str(org)}, headers=sales
    )
    assert fake_msg.status_code == 422
    broken_ole = _post(
        url,
        files={"file": ("a.msg", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600)},
        data={"organization_id": str(org)},
        headers=sales,
    )
    assert broken_ole.status_code == 422
    bad_id = _post(
        url, files={"file": ("a.eml", eml)}, data={"organization_id": "nope"}, headers=sales
    )
    assert bad_id.status_code == 422
    stranger = bearer(stack.issuer, "bob", directions=["elsewhere"])
    hidden = _post(
        url, files={"file": ("a.eml", eml)}, data={"organization_id": str(org)}, headers=stranger
    )
    assert hidden.status_code == 404
    assert _count(stack, org) == 0
