"""HTTP of employees: everybody signed in reads, administrators write."""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal, require_roles
from clientele_shared.auth.principal import Principal, Role
from clientele_shared.http.concurrency import IfMatch, etag, required_versions
from clientele_shared.http.params import EntryCursor
from clientele_shared.runtime import CurrentRuntime
from clientele_shared.service_layer import AuditEntry
from fastapi import APIRouter, Depends, Query, Response, status

from clientele_directory.employees import service
from clientele_directory.employees.rules import (
    Employee,
    EmployeeDraft,
    EmployeePatch,
    PasswordChange,
)

router = APIRouter(prefix="/v1/employees", tags=["employees"])
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]


@router.get("")
async def list_employees(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    direction: Annotated[str | None, Query(max_length=64)] = None,
    active: bool | None = True,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[Employee]:
    """Employees the caller may see, by name."""
    return await service.list_employees(
        runtime=runtime, principal=principal, direction=direction, active=active, limit=limit
    )


@router.get("/me")
async def who_am_i(
    principal: CurrentPrincipal, runtime: CurrentRuntime, response: Response
) -> Employee:
    """The caller's own employee record (404 for principals that are not employees)."""
    employee = await service.who_am_i(runtime=runtime, principal=principal)
    response.headers["ETag"] = etag(employee.version)
    return employee


@router.get("/{employee_id}")
async def get_employee(
    employee_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime, response: Response
) -> Employee:
    employee = await service.get_employee(
        runtime=runtime, principal=principal, employee_id=employee_id
    )
    response.headers["ETag"] = etag(employee.version)
    return employee


@router.get("/{employee_id}/audit")
async def employee_audit(
    employee_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    after: EntryCursor = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditEntry]:
    return await service.employee_audit(
        runtime=runtime, principal=principal, employee_id=employee_id, after=after, limit=limit
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_employee(
    draft: EmployeeDraft, principal: Admin, runtime: CurrentRuntime, response: Response
) -> Employee:
    """A new employee (administrators); 409 when the e-mail is taken."""
    employee = await service.create_employee(runtime=runtime, principal=principal, draft=draft)
    response.headers["ETag"] = etag(1)
    response.headers["Location"] = f"/v1/employees/{employee.id}"
    return employee


@router.patch("/{employee_id}")
async def update_employee(
    employee_id: uuid.UUID,
    patch: EmployeePatch,
    principal: Admin,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Employee:
    """Change an employee (administrators): roles, directions, manager, ``active: false`` to
    deactivate (he can no longer sign in); If-Match required."""
    employee = await service.update_employee(
        runtime=runtime,
        principal=principal,
        employee_id=employee_id,
        patch=patch,
        expected=required_versions(if_match),
    )
    response.headers["ETag"] = etag(employee.version)
    return employee


@router.put("/{employee_id}/password", status_code=status.HTTP_204_NO_CONTENT)
async def set_password(
    employee_id: uuid.UUID,
    change: PasswordChange,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
) -> None:
    """Set the password used with POST /v1/auth/token: administrators for anybody, employees
    for themselves (with their current password)."""
    await service.set_password(
        runtime=runtime, principal=principal, employee_id=employee_id, change=change
    )
