"""Employee and direction rules without infrastructure."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from clientele_directory.employees.rules import (
    Credentials,
    Employee,
    EmployeeDraft,
    EmployeePatch,
    apply_employee_patch,
    creates_manager_cycle,
    employee_changes,
    login_client_key,
    login_key,
)
from clientele_directory.organizations.rules import PatchRejected
from pydantic import ValidationError

BASE = {"email": "Anna@Example.com", "name": "Анна Смирнова", "roles": ["sales"]}


def _draft(**fields: Any) -> EmployeeDraft:
    return EmployeeDraft.model_validate(BASE | fields)


def test_roles_are_known_user_roles_and_the_password_is_secret() -> None:
    draft = _draft(roles=["sales", "admin", "sales"], password="correct horse battery")
    assert draft.roles == ["admin", "sales"]
    assert "correct horse" not in repr(draft)
    assert "password" not in draft.fields().model_dump()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"roles": ["service"]}, "unknown role"),
        ({"roles": ["god"]}, "unknown role"),
        ({"roles": []}, "at least 1 item"),
        ({"password": "short"}, "12 to 256 characters"),
        ({"password": " " * 20}, "blank"),
        ({"password": "x" * 257}, "12 to 256 characters"),
        ({"email": "not-an-email"}, "@-sign"),
        ({"directions": ["Not Valid"]}, "pattern"),
    ],
)
def test_bad_employees_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        _draft(**fields)
    assert message in str(exc.value)


def test_employee_patch() -> None:
    employee = Employee(**_draft().fields().model_dump(), id=uuid.uuid4(), version=1)
    patched = apply_employee_patch(
        employee, EmployeePatch.model_validate({"active": False, "roles": ["head_of_sales"]})
    )
    assert employee_changes(employee, patched) == {
        "roles": {"old": ["sales"], "new": ["head_of_sales"]},
        "active": {"old": True, "new": False},
    }
    with pytest.raises(PatchRejected):
        apply_employee_patch(employee, EmployeePatch.model_validate({"roles": ["service"]}))
    with pytest.raises(ValidationError):
        EmployeePatch.model_validate({"password_hash": "x"})


def test_manager_cycles() -> None:
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    chain = {b: c, c: None}
    assert not creates_manager_cycle(a, b, chain)
    assert creates_manager_cycle(a, a, {})
    assert creates_manager_cycle(c, a, {a: b, b: c})
    assert not creates_manager_cycle(a, None, chain)
    assert not creates_manager_cycle(a, b, {b: c, c: b})  # an existing loop elsewhere ends


def test_login_keys_hide_the_address_and_ignore_case() -> None:
    key = login_key(" Anna@Example.com ", "10.0.0.1")
    assert key == login_key("anna@example.com", "10.0.0.1")
    assert key != login_key("anna@example.com", "10.0.0.2")
    assert "anna" not in key
    assert "10.0.0.1" not in key
    assert "10.0.0.1" not in login_client_key("10.0.0.1")
    assert Credentials(email="a@b.c", password="x").password.get_secret_value() == "x"
