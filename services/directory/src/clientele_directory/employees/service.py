"""Employee operations: everybody signed in reads, administrators write.

Employees follow the direction rule like every other record: a user sees himself and the
employees sharing one of his directions; administrators, security officers and services see all.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from clientele_shared.auth.dependencies import ForbiddenError
from clientele_shared.auth.principal import Principal, Role
from clientele_shared.http.concurrency import check_version
from clientele_shared.http.problems import Conflict, NotFound, invalid, invalid_field
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import AuditEntry, Versioned, audit_trail, write_version
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.employees import queries
from clientele_directory.employees.rules import (
    Employee,
    EmployeeDraft,
    EmployeeFields,
    EmployeePatch,
    PasswordChange,
    apply_employee_patch,
    creates_manager_cycle,
    employee_changes,
    employee_created_changes,
    employee_storage_values,
)
from clientele_directory.organizations.rules import PatchRejected
from clientele_directory.publishing import employee_created, employee_updated
from clientele_directory.tables import audit_log, employees
from clientele_directory.work import work

KIND = "employee"
EMPLOYEE = Versioned(employees, KIND)
HASHER = PasswordHasher()
_EMAIL_TAKEN = "An employee with this e-mail exists."


async def hash_password(password: str) -> str:
    """argon2id, off the event loop (it takes tens of milliseconds and 64 MiB on purpose)."""
    return await asyncio.to_thread(HASHER.hash, password)


async def verify_password(password_hash: str, password: str) -> bool:
    try:
        return await asyncio.to_thread(HASHER.verify, password_hash, password)
    except VerificationError:
        return False


async def check_responsible(session: AsyncSession, employee_id: uuid.UUID | None) -> None:
    """A responsible employee must be an active employee (422 otherwise)."""
    if employee_id is not None and not await queries.is_active(session, employee_id):
        raise invalid_field(
            "responsible_employee_id", "no such active employee", "unknown_reference"
        )


async def _visible_employee(
    session: AsyncSession, principal: Principal, employee_id: uuid.UUID, *, lock: bool = False
) -> Employee:
    employee = await queries.visible_employee(session, principal, employee_id, lock=lock)
    if employee is None:
        raise NotFound("No such employee.")
    return employee


async def _check_references(
    session: AsyncSession, fields: EmployeeFields, employee_id: uuid.UUID
) -> None:
    """Directions must exist and not be archived; the manager must exist and not close a loop."""
    if fields.directions:
        known = await queries.live_directions(session, fields.directions)
        unknown = sorted(set(fields.directions) - known)
        if unknown:
            raise invalid_field(
                "directions", f"unknown or archived directions: {', '.join(unknown)}"
            )
    if fields.manager_id is None:
        return
    managers: dict[uuid.UUID, uuid.UUID | None] = {}
    current: uuid.UUID | None = fields.manager_id
    while current is not None and current not in managers and len(managers) < 1000:
        row = await queries.manager_of(session, current)
        if row is None:
            if current == fields.manager_id:
                raise invalid_field("manager_id", "no such employee", "unknown_reference")
            break
        managers[row.id] = row.manager_id
        current = row.manager_id
    if creates_manager_cycle(employee_id, fields.manager_id, managers):
        raise invalid_field("manager_id", "an employee cannot report to himself, even indirectly")


async def list_employees(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    direction: str | None,
    active: bool | None,
    limit: int,
) -> list[Employee]:
    """Employees the caller may see, by name."""
    async with runtime.sessions() as session:
        return await queries.list_visible(
            session, principal, direction=direction, active=active, limit=limit
        )


async def who_am_i(*, runtime: ServiceRuntime, principal: Principal) -> Employee:
    """The caller's own employee record (404 for principals that are not employees)."""
    employee_id = queries.subject_id(principal)
    if employee_id is None:
        raise NotFound("You are not an employee of the directory.")
    return await get_employee(runtime=runtime, principal=principal, employee_id=employee_id)


async def get_employee(
    *, runtime: ServiceRuntime, principal: Principal, employee_id: uuid.UUID
) -> Employee:
    async with runtime.sessions() as session:
        return await _visible_employee(session, principal, employee_id)


async def employee_audit(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    employee_id: uuid.UUID,
    after: int,
    limit: int,
) -> list[AuditEntry]:
    async with runtime.sessions() as session:
        await _visible_employee(session, principal, employee_id)
        return await audit_trail(session, audit_log, KIND, employee_id, after=after, limit=limit)


async def create_employee(
    *, runtime: ServiceRuntime, principal: Principal, draft: EmployeeDraft
) -> Employee:
    """A new employee; 409 when the e-mail is taken."""
    employee_id = uuid.uuid4()
    fields = draft.fields()
    password_hash = (
        await hash_password(draft.password.get_secret_value()) if draft.password else None
    )
    async with work(runtime, principal) as uow:
        await _check_references(uow.session, fields, employee_id)
        try:
            async with uow.session.begin_nested():
                employee = await queries.insert_employee(
                    uow.session,
                    {
                        "id": employee_id,
                        **employee_storage_values(fields),
                        "password_hash": password_hash,
                        "password_changed_at": func.now() if password_hash else None,
                        "created_by": principal.subject,
                        "updated_by": principal.subject,
                    },
                )
        except IntegrityError:
            raise Conflict(_EMAIL_TAKEN) from None
        await uow.audit(
            kind=KIND,
            entity_id=employee_id,
            action="created",
            version=1,
            changes=employee_created_changes(employee),
        )
        uow.stage(employee_created(uow.outbox, employee, uow.actor))
    return employee


async def update_employee(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    employee_id: uuid.UUID,
    patch: EmployeePatch,
    expected: set[int],
) -> Employee:
    """Change an employee: roles, directions, manager, ``active: false`` to deactivate (he can
    no longer sign in)."""
    async with work(runtime, principal) as uow:
        current = await _visible_employee(uow.session, principal, employee_id, lock=True)
        check_version(expected, current.version)
        try:
            patched = apply_employee_patch(current, patch)
        except PatchRejected as exc:
            raise invalid(exc.errors) from None
        changes = employee_changes(current, patched)
        if not changes:
            return current
        await _check_references(uow.session, patched, employee_id)
        try:
            async with uow.session.begin_nested():
                await write_version(
                    uow,
                    EMPLOYEE,
                    employee_id,
                    current=current.version,
                    expected=expected,
                    values=employee_storage_values(patched),
                    action="updated",
                    changes=changes,
                )
        except IntegrityError:
            raise Conflict(_EMAIL_TAKEN) from None
        employee = await _visible_employee(uow.session, principal, employee_id)
        uow.stage(
            employee_updated(
                uow.outbox, employee, changes, uow.actor, previous_directions=current.directions
            )
        )
    return employee


async def set_password(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    employee_id: uuid.UUID,
    change: PasswordChange,
) -> None:
    """Administrators set anybody's password, employees their own (with the current one)."""
    is_admin = principal.has_role(Role.ADMIN)
    if not is_admin and queries.subject_id(principal) != employee_id:
        raise ForbiddenError("Only administrators set other employees' passwords.")
    new_hash = await hash_password(change.password.get_secret_value())
    async with work(runtime, principal) as uow:
        await _visible_employee(uow.session, principal, employee_id, lock=True)
        stored = await queries.password_hash(uow.session, employee_id)
        if not is_admin:
            current = change.current_password.get_secret_value() if change.current_password else ""
            if stored is None or not await verify_password(stored, current):
                raise ForbiddenError("The current password is not right.")
        await queries.set_password_hash(uow.session, employee_id, new_hash)
        await uow.audit(kind=KIND, entity_id=employee_id, action="password_set", version=None)


async def rehash_password(
    *, runtime: ServiceRuntime, employee_id: uuid.UUID, password: str
) -> None:
    """Store the password hashed with the current parameters (after a sign-in)."""
    new_hash = await hash_password(password)
    async with runtime.sessions() as session, session.begin():
        await queries.set_password_hash(session, employee_id, new_hash, changed=False)


async def sign_in_record(*, runtime: ServiceRuntime, email: str) -> Any:
    """The employee row with this e-mail (case aside), password hash included, or None."""
    async with runtime.sessions() as session:
        return await queries.by_email(session, email)
