"""Directions and employees: everybody signed in reads, administrators write.

Employees follow the direction rule like every other record: a user sees himself and the
employees sharing one of his directions; administrators, security officers and services see all.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from clientele_shared.auth.access import visible_to
from clientele_shared.auth.dependencies import CurrentPrincipal, ForbiddenError, require_roles
from clientele_shared.auth.principal import Principal, Role
from clientele_shared.http.concurrency import IfMatch, check_version, etag, required_versions
from clientele_shared.http.params import EntryCursor
from clientele_shared.http.problems import Conflict, NotFound, invalid, invalid_field
from clientele_shared.runtime import CurrentRuntime
from clientele_shared.service_layer import AuditEntry, actor_of
from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy import ColumnElement, func, insert, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.api.common import audit, audit_trail
from clientele_directory.domain.staff import (
    DirectionDraft,
    DirectionPatch,
    DirectionRecord,
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
from clientele_directory.publishing import direction_changed, employee_created, employee_updated
from clientele_directory.tables import directions, employees
from clientele_directory.values import STORED

directions_router = APIRouter(prefix="/v1/directions", tags=["directions"])
employees_router = APIRouter(prefix="/v1/employees", tags=["employees"])
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
HASHER = PasswordHasher()


def direction_audit_id(code: str) -> uuid.UUID:
    """Directions are keyed by code; the audit trail keys them by this stable UUID."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"clientele:direction:{code}")


# --- directions ------------------------------------------------------------------------------


async def _direction(session: AsyncSession, code: str, *, lock: bool = False) -> DirectionRecord:
    stmt = select(directions).where(directions.c.code == code)
    row = (await session.execute(stmt.with_for_update() if lock else stmt)).first()
    if row is None:
        raise NotFound("No such direction.")
    return DirectionRecord.model_validate(row, from_attributes=True)


@directions_router.get("")
async def list_directions(
    principal: CurrentPrincipal, runtime: CurrentRuntime, include_archived: bool = False
) -> list[DirectionRecord]:
    """The company's directions (business lines), by code."""
    stmt = select(directions).order_by(directions.c.code)
    if not include_archived:
        stmt = stmt.where(directions.c.archived.is_(False))
    async with runtime.sessions() as session:
        rows = (await session.execute(stmt)).all()
    return [DirectionRecord.model_validate(row, from_attributes=True) for row in rows]


@directions_router.get("/{code}")
async def get_direction(
    code: str, principal: CurrentPrincipal, runtime: CurrentRuntime, response: Response
) -> DirectionRecord:
    async with runtime.sessions() as session:
        direction = await _direction(session, code)
    response.headers["ETag"] = etag(direction.version)
    return direction


@directions_router.post("", status_code=status.HTTP_201_CREATED)
async def create_direction(
    draft: DirectionDraft, principal: Admin, runtime: CurrentRuntime, response: Response
) -> DirectionRecord:
    async with runtime.sessions() as session, session.begin():
        try:
            async with session.begin_nested():
                row = (
                    await session.execute(
                        insert(directions)
                        .values(**draft.model_dump(), created_by=principal.subject)
                        .returning(directions)
                    )
                ).one()
        except IntegrityError:
            raise Conflict(f"The direction {draft.code!r} exists.") from None
        direction = DirectionRecord.model_validate(row, from_attributes=True)
        changes = {
            name: {"old": None, "new": value}
            for name, value in draft.model_dump().items()
            if value is not None
        }
        await audit(
            session,
            principal,
            kind="direction",
            entity_id=direction_audit_id(direction.code),
            action="created",
            version=1,
            changes=changes,
        )
        await runtime.outbox.add(
            session, direction_changed(runtime.outbox, direction, changes, actor_of(principal))
        )
    response.headers["ETag"] = etag(1)
    return direction


@directions_router.patch("/{code}")
async def update_direction(
    code: str,
    patch: DirectionPatch,
    principal: Admin,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> DirectionRecord:
    """Rename, describe or archive a direction (its code never changes); If-Match required."""
    wanted = required_versions(if_match)
    async with runtime.sessions() as session, session.begin():
        current = await _direction(session, code, lock=True)
        check_version(wanted, current.version)
        given = patch.model_dump(exclude_unset=True)
        if given.get("name", "") is None or given.get("archived", False) is None:
            raise invalid_field("name", "name and archived cannot be null")
        old = current.model_dump(include=set(given))
        changes = {
            name: {"old": old[name], "new": value}
            for name, value in given.items()
            if old[name] != value
        }
        if not changes:
            response.headers["ETag"] = etag(current.version)
            return current
        row = (
            await session.execute(
                update(directions)
                .where(directions.c.code == code)
                .values(
                    **given,
                    version=current.version + 1,
                    updated_by=principal.subject,
                    updated_at=func.now(),
                )
                .returning(directions)
            )
        ).one()
        direction = DirectionRecord.model_validate(row, from_attributes=True)
        await audit(
            session,
            principal,
            kind="direction",
            entity_id=direction_audit_id(code),
            action="updated",
            version=direction.version,
            changes=changes,
        )
        await runtime.outbox.add(
            session, direction_changed(runtime.outbox, direction, changes, actor_of(principal))
        )
    response.headers["ETag"] = etag(direction.version)
    return direction


# --- employees -------------------------------------------------------------------------------


def employee_visible(principal: Principal) -> ColumnElement[bool]:
    """SQL: the employee row is visible to the principal (himself, or a shared direction)."""
    if principal.sees_all_directions:
        return true()
    return or_(
        employees.c.id == _subject_id(principal),
        visible_to(principal, employees.c.directions),
    )


def _subject_id(principal: Principal) -> uuid.UUID | None:
    try:
        return uuid.UUID(principal.subject)
    except ValueError:
        return None


def _employee(row: Any) -> Employee:
    data = dict(row._mapping)
    data["has_password"] = data.pop("password_hash", None) is not None
    for internal in ("password_changed_at", "created_by", "updated_by"):
        data.pop(internal, None)
    return Employee.model_validate(data, context=STORED)


async def _visible_employee(
    session: AsyncSession, principal: Principal, employee_id: uuid.UUID, *, lock: bool = False
) -> Employee:
    stmt = select(employees).where(employees.c.id == employee_id, employee_visible(principal))
    row = (await session.execute(stmt.with_for_update() if lock else stmt)).first()
    if row is None:
        raise NotFound("No such employee.")
    return _employee(row)


async def _check_references(
    session: AsyncSession, fields: EmployeeFields, employee_id: uuid.UUID
) -> None:
    """Directions must exist and not be archived; the manager must exist and not close a loop."""
    if fields.directions:
        known = set(
            await session.scalars(
                select(directions.c.code).where(
                    directions.c.code.in_(fields.directions), directions.c.archived.is_(False)
                )
            )
        )
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
        row = (
            await session.execute(
                select(employees.c.id, employees.c.manager_id).where(employees.c.id == current)
            )
        ).first()
        if row is None:
            if current == fields.manager_id:
                raise invalid_field("manager_id", "no such employee", "unknown_reference")
            break
        managers[row.id] = row.manager_id
        current = row.manager_id
    if creates_manager_cycle(employee_id, fields.manager_id, managers):
        raise invalid_field("manager_id", "an employee cannot report to himself, even indirectly")


async def hash_password(password: str) -> str:
    """argon2id, off the event loop (it takes tens of milliseconds and 64 MiB on purpose)."""
    return await asyncio.to_thread(HASHER.hash, password)


async def verify_password(password_hash: str, password: str) -> bool:
    try:
        return await asyncio.to_thread(HASHER.verify, password_hash, password)
    except VerificationError:
        return False


@employees_router.get("")
async def list_employees(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    direction: Annotated[str | None, Query(max_length=64)] = None,
    active: bool | None = True,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[Employee]:
    """Employees the caller may see, by name."""
    stmt = (
        select(employees)
        .where(employee_visible(principal))
        .order_by(employees.c.name, employees.c.id)
        .limit(limit)
    )
    if active is not None:
        stmt = stmt.where(employees.c.active.is_(active))
    if direction is not None:
        stmt = stmt.where(employees.c.directions.any(direction))
    async with runtime.sessions() as session:
        rows = (await session.execute(stmt)).all()
    return [_employee(row) for row in rows]


@employees_router.get("/me")
async def who_am_i(
    principal: CurrentPrincipal, runtime: CurrentRuntime, response: Response
) -> Employee:
    """The caller's own employee record (404 for principals that are not employees)."""
    employee_id = _subject_id(principal)
    if employee_id is None:
        raise NotFound("You are not an employee of the directory.")
    async with runtime.sessions() as session:
        employee = await _visible_employee(session, principal, employee_id)
    response.headers["ETag"] = etag(employee.version)
    return employee


@employees_router.get("/{employee_id}")
async def get_employee(
    employee_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime, response: Response
) -> Employee:
    async with runtime.sessions() as session:
        employee = await _visible_employee(session, principal, employee_id)
    response.headers["ETag"] = etag(employee.version)
    return employee


@employees_router.get("/{employee_id}/audit")
async def employee_audit(
    employee_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    after: EntryCursor = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditEntry]:
    async with runtime.sessions() as session:
        await _visible_employee(session, principal, employee_id)
        return await audit_trail(session, "employee", employee_id, after=after, limit=limit)


@employees_router.post("", status_code=status.HTTP_201_CREATED)
async def create_employee(
    draft: EmployeeDraft, principal: Admin, runtime: CurrentRuntime, response: Response
) -> Employee:
    """A new employee (administrators); 409 when the e-mail is taken."""
    employee_id = uuid.uuid4()
    fields = draft.fields()
    password_hash = (
        await hash_password(draft.password.get_secret_value()) if draft.password else None
    )
    async with runtime.sessions() as session, session.begin():
        await _check_references(session, fields, employee_id)
        try:
            async with session.begin_nested():
                row = (
                    await session.execute(
                        insert(employees)
                        .values(
                            id=employee_id,
                            **employee_storage_values(fields),
                            password_hash=password_hash,
                            password_changed_at=func.now() if password_hash else None,
                            created_by=principal.subject,
                            updated_by=principal.subject,
                        )
                        .returning(employees)
                    )
                ).one()
        except IntegrityError:
            raise Conflict("An employee with this e-mail exists.") from None
        employee = _employee(row)
        await audit(
            session,
            principal,
            kind="employee",
            entity_id=employee_id,
            action="created",
            version=1,
            changes=employee_created_changes(employee),
        )
        await runtime.outbox.add(
            session, employee_created(runtime.outbox, employee, actor_of(principal))
        )
    response.headers["ETag"] = etag(1)
    response.headers["Location"] = f"/v1/employees/{employee_id}"
    return employee


@employees_router.patch("/{employee_id}")
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
    wanted = required_versions(if_match)
    async with runtime.sessions() as session, session.begin():
        current = await _visible_employee(session, principal, employee_id, lock=True)
        check_version(wanted, current.version)
        try:
            patched = apply_employee_patch(current, patch)
        except PatchRejected as exc:
            raise invalid(exc.errors) from None
        changes = employee_changes(current, patched)
        if not changes:
            response.headers["ETag"] = etag(current.version)
            return current
        await _check_references(session, patched, employee_id)
        try:
            async with session.begin_nested():
                row = (
                    await session.execute(
                        update(employees)
                        .where(employees.c.id == employee_id)
                        .values(
                            **employee_storage_values(patched),
                            version=current.version + 1,
                            updated_by=principal.subject,
                            updated_at=func.now(),
                        )
                        .returning(employees)
                    )
                ).one()
        except IntegrityError:
            raise Conflict("An employee with this e-mail exists.") from None
        employee = _employee(row)
        await audit(
            session,
            principal,
            kind="employee",
            entity_id=employee_id,
            action="updated",
            version=employee.version,
            changes=changes,
        )
        await runtime.outbox.add(
            session,
            employee_updated(
                runtime.outbox,
                employee,
                changes,
                actor_of(principal),
                previous_directions=current.directions,
            ),
        )
    response.headers["ETag"] = etag(employee.version)
    return employee


@employees_router.put("/{employee_id}/password", status_code=status.HTTP_204_NO_CONTENT)
async def set_password(
    employee_id: uuid.UUID,
    change: PasswordChange,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
) -> None:
    """Set the password used with POST /v1/auth/token: administrators for anybody, employees
    for themselves (with their current password)."""
    is_admin = principal.has_role(Role.ADMIN)
    if not is_admin and _subject_id(principal) != employee_id:
        raise ForbiddenError("Only administrators set other employees' passwords.")
    new_hash = await hash_password(change.password.get_secret_value())
    async with runtime.sessions() as session, session.begin():
        await _visible_employee(session, principal, employee_id, lock=True)
        stored = await session.scalar(
            select(employees.c.password_hash).where(employees.c.id == employee_id)
        )
        if not is_admin:
            current = change.current_password.get_secret_value() if change.current_password else ""
            if stored is None or not await verify_password(stored, current):
                raise ForbiddenError("The current password is not right.")
        await session.execute(
            update(employees)
            .where(employees.c.id == employee_id)
            .values(password_hash=new_hash, password_changed_at=func.now())
        )
        await audit(
            session,
            principal,
            kind="employee",
            entity_id=employee_id,
            action="password_set",
            version=None,
        )
