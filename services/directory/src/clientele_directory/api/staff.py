"""Directions: everybody signed in reads, administrators write."""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal, require_roles
from clientele_shared.auth.principal import Principal, Role
from clientele_shared.http.concurrency import IfMatch, check_version, etag, required_versions
from clientele_shared.http.problems import Conflict, NotFound, invalid_field
from clientele_shared.runtime import CurrentRuntime
from clientele_shared.service_layer import actor_of
from fastapi import APIRouter, Depends, Response, status
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.api.common import audit
from clientele_directory.employees.rules import (
    DirectionDraft,
    DirectionPatch,
    DirectionRecord,
)
from clientele_directory.publishing import direction_changed
from clientele_directory.tables import directions

directions_router = APIRouter(prefix="/v1/directions", tags=["directions"])
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]


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
