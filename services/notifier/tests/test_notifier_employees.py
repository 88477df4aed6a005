"""E-mail to employees by id through a real notifier, Kafka and SMTP server: the address comes
from the directory's employees topic, follows a change of address, and an inactive employee gets
no e-mail (the delivery log says why)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_testkit.infra import Infrastructure
from clientele_testkit.processes import ServiceProcess, wait_for
from notifier_testkit import (
    REQUESTED,
    Publish,
    SmtpServer,
    deliveries,
    known_employee,
    notifier_env,
)

pytestmark = pytest.mark.integration


def email_to(publish: Publish, key: str, recipient: dict[str, str], subject: str) -> None:
    publish(
        "interactions",
        REQUESTED,
        {
            "idempotency_key": key,
            "channel": "email",
            "kind": "deal.assigned",
            "recipients": [recipient],
            "subject": subject,
            "text": "Сделка передана вам",
        },
    )


def test_email_to_an_employee_goes_to_his_current_address_and_never_to_an_inactive_one(
    start_service: Callable[..., ServiceProcess],
    smtp: SmtpServer,
    publish: Publish,
    issuer: TokenIssuer,
    infra: Infrastructure,
) -> None:
    notifier = start_service("notifier", **notifier_env(smtp))
    employee = str(uuid.uuid4())
    first_address = f"ivan.{employee[:8]}@example.com"
    second_address = f"i.petrov.{employee[:8]}@example.org"
    publish(
        "directory",
        "directory.employee.created",
        {
            "employee_id": employee,
            "version": 1,
            "email": first_address.upper(),
            "name": "Иван Петров",
            "roles": ["sales"],
            "directions": ["retail"],
        },
        aggregate_id=employee,
    )
    wait_for(lambda: known_employee(infra, employee, 1), 60, "the employee to be known")

    key = f"assigned-{uuid.uuid4()}"
    email_to(publish, key, {"employee_id": employee}, "Сделка №1")
    wait_for(lambda: len(smtp.box.to(first_address)) == 1, 60, "the e-mail to his address")
    (message,) = smtp.box.to(first_address)
    assert message["To"].addresses[0].display_name == "Иван Петров"
    assert message["Subject"] == "Сделка №1"
    (sent,) = deliveries(notifier, issuer, key)
    assert sent["state"] == "sent"
    assert sent["recipient"] == f"employee:{employee}"

    reminder_id = str(uuid.uuid4())  # a reminder by e-mail, addressed by id only
    publish(
        "interactions",
        "interactions.reminder.scheduled",
        {
            "reminder_id": reminder_id,
            "due_at": (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)).isoformat(),
            "recipient": {"employee_id": employee},
            "channel": "email",
            "subject": "Позвонить клиенту",
        },
        aggregate_id=reminder_id,
    )
    wait_for(lambda: len(smtp.box.to(first_address)) == 2, 60, "the reminder by e-mail")
    assert smtp.box.to(first_address)[1]["Subject"] == "Reminder: Позвонить клиенту"

    publish(
        "directory",
        "directory.employee.updated",
        {
            "employee_id": employee,
            "version": 2,
            "changes": {"email": {"old": first_address, "new": second_address}},
        },
        aggregate_id=employee,
    )
    wait_for(lambda: known_employee(infra, employee, 2), 60, "the new address to be known")
    key = f"assigned-{uuid.uuid4()}"
    email_to(publish, key, {"employee_id": employee}, "Сделка №2")
    wait_for(lambda: len(smtp.box.to(second_address)) == 1, 60, "the e-mail to his new address")
    assert len(smtp.box.to(first_address)) == 2

    publish(
        "directory",
        "directory.employee.updated",
        {"employee_id": employee, "version": 3, "changes": {"active": {"old": True, "new": False}}},
        aggregate_id=employee,
    )
    wait_for(lambda: known_employee(infra, employee, 3), 60, "the deactivation to be known")
    by_id, by_address = f"assigned-{uuid.uuid4()}", f"assigned-{uuid.uuid4()}"
    email_to(publish, by_id, {"employee_id": employee}, "Сделка №3")
    email_to(publish, by_address, {"email": second_address, "employee_id": employee}, "Сделка №4")

    def settled(key: str) -> dict[str, Any] | None:
        found = deliveries(notifier, issuer, key)
        return found[0] if found and found[0]["state"] == "suppressed" else None

    for key in (by_id, by_address):
        wait_for(lambda key=key: settled(key) is not None, 60, "the e-mail to be suppressed")
        suppressed = settled(key)
        assert suppressed is not None
        assert suppressed["log"][-1]["outcome"] == "suppressed"
        assert f"employee {employee} is inactive" in suppressed["log"][-1]["detail"]
    assert len(smtp.box.to(second_address)) == 1

    stranger = str(uuid.uuid4())  # never announced by the directory: tried, then given up
    key = f"assigned-{uuid.uuid4()}"
    email_to(publish, key, {"employee_id": stranger}, "Сделка №5")

    def dead() -> dict[str, Any] | None:
        found = deliveries(notifier, issuer, key)
        return found[0] if found and found[0]["state"] == "dead" else None

    wait_for(lambda: dead() is not None, 60, "the delivery to an unknown employee to give up")
    failed = dead()
    assert failed is not None
    assert failed["attempts"] == 3
    assert f"no e-mail address is known for employee {stranger}" in failed["dead_letter_reason"]
