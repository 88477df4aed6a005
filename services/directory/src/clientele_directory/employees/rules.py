"""The company's own people and business lines: directions and employees (no I/O)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from clientele_shared.auth.principal import Role
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, StringConstraints
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

from clientele_directory.organizations.rules import PatchRejected
from clientele_directory.values import (
    MAX_LIST,
    Directions,
    Email,
    Name,
    creation_changes,
    diff,
)

USER_ROLES = frozenset(Role) - {Role.SERVICE}
"""Roles an employee may hold (``service`` belongs to service principals only)."""

MIN_PASSWORD, MAX_PASSWORD = 12, 256


def _user_role(value: str) -> str:
    if value not in USER_ROLES:
        raise PydanticCustomError(
            "role", "unknown role; one of {roles}", {"roles": ", ".join(sorted(USER_ROLES))}
        )
    return value


def _sorted_unique(values: list[str]) -> list[str]:
    return sorted(set(values))


UserRole = Annotated[str, AfterValidator(_user_role)]
Roles = Annotated[list[UserRole], Field(max_length=10), AfterValidator(_sorted_unique)]


def _password(value: SecretStr) -> SecretStr:
    secret = value.get_secret_value()
    if not MIN_PASSWORD <= len(secret) <= MAX_PASSWORD:
        raise PydanticCustomError(
            "password",
            "a password has {low} to {high} characters",
            {"low": MIN_PASSWORD, "high": MAX_PASSWORD},
        )
    if not secret.strip():
        raise PydanticCustomError("password", "a password cannot be blank")
    return value


Password = Annotated[SecretStr, AfterValidator(_password)]


# --- employees -------------------------------------------------------------------------------


class EmployeeFields(BaseModel):
    """What an administrator sets on an employee."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: Email
    name: Name
    roles: Roles = Field(min_length=1)
    directions: Directions = Field(default_factory=list, max_length=MAX_LIST)
    manager_id: uuid.UUID | None = None
    active: bool = True


EMPLOYEE_FIELDS: tuple[str, ...] = tuple(EmployeeFields.model_fields)


class EmployeeDraft(EmployeeFields):
    """A new employee; the password is optional (an identity provider may sign him in)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)  # passwords as typed
    password: Password | None = None

    def fields(self) -> EmployeeFields:
        return EmployeeFields.model_validate(self.model_dump(exclude={"password"}))


class EmployeePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Any = None
    name: Any = None
    roles: Any = None
    directions: Any = None
    manager_id: Any = None
    active: Any = None

    def given(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class Employee(EmployeeFields):
    id: uuid.UUID
    version: int
    has_password: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def fields(self) -> dict[str, Any]:
        return self.model_dump(mode="json", include=set(EMPLOYEE_FIELDS))


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: Password
    current_password: SecretStr | None = Field(
        default=None, description="required when employees change their own password"
    )


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=320)]
    password: Annotated[SecretStr, Field(max_length=MAX_PASSWORD)]


class AccessToken(BaseModel):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 (the OAuth token type, not a secret)
    expires_in: int


def apply_employee_patch(current: Employee, patch: EmployeePatch) -> EmployeeFields:
    try:
        return EmployeeFields.model_validate({**current.fields(), **patch.given()})
    except PydanticValidationError as exc:
        raise PatchRejected(exc.errors(include_url=False)) from None


def employee_changes(current: Employee, patched: EmployeeFields) -> dict[str, Any]:
    return diff(current.fields(), patched.model_dump(mode="json"), EMPLOYEE_FIELDS)


def employee_created_changes(employee: Employee) -> dict[str, Any]:
    return creation_changes(employee.fields(), EMPLOYEE_FIELDS)


def employee_storage_values(fields: EmployeeFields) -> dict[str, Any]:
    values = fields.model_dump(mode="json", include=set(EMPLOYEE_FIELDS))
    values["manager_id"] = fields.manager_id
    return values


def creates_manager_cycle(
    employee_id: uuid.UUID,
    manager_id: uuid.UUID | None,
    managers: Mapping[uuid.UUID, uuid.UUID | None],
) -> bool:
    """Would ``employee_id`` reporting to ``manager_id`` close a loop in ``managers``
    (employee -> his manager)?"""
    seen: set[uuid.UUID] = set()
    current = manager_id
    while current is not None and current not in seen:
        if current == employee_id:
            return True
        seen.add(current)
        current = managers.get(current)
    return False


def login_key(email: str, client: str) -> str:
    """The rate-limit key of a login e-mail from one client address (case- and space-insensitive
    e-mail; neither the address nor the e-mail is kept in clear)."""
    digest = hashlib.sha256(f"{email.strip().casefold()}\n{client}".encode()).hexdigest()
    return f"clientele:directory:login:{digest}"


def login_client_key(client: str) -> str:
    """The rate-limit key of every sign-in from one client address (whatever the e-mail)."""
    digest = hashlib.sha256(client.encode()).hexdigest()
    return f"clientele:directory:login-client:{digest}"
