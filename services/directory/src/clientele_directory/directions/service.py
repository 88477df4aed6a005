"""Direction operations: everybody signed in reads, administrators write. A direction is keyed
by its code; its audit entries by ``direction_audit_id``."""

from __future__ import annotations

from clientele_shared.auth.principal import Principal
from clientele_shared.http.concurrency import check_version
from clientele_shared.http.problems import Conflict, NotFound, invalid_field
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import field_changes
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.directions import queries
from clientele_directory.directions.rules import (
    DirectionDraft,
    DirectionPatch,
    DirectionRecord,
    direction_audit_id,
)
from clientele_directory.publishing import direction_changed
from clientele_directory.work import work

KIND = "direction"


async def _direction(session: AsyncSession, code: str, *, lock: bool = False) -> DirectionRecord:
    direction = await queries.load(session, code, lock=lock)
    if direction is None:
        raise NotFound("No such direction.")
    return direction


async def list_directions(
    *, runtime: ServiceRuntime, include_archived: bool
) -> list[DirectionRecord]:
    """The company's directions (business lines), by code."""
    async with runtime.sessions() as session:
        return await queries.listed(session, include_archived=include_archived)


async def get_direction(*, runtime: ServiceRuntime, code: str) -> DirectionRecord:
    async with runtime.sessions() as session:
        return await _direction(session, code)


async def create_direction(
    *, runtime: ServiceRuntime, principal: Principal, draft: DirectionDraft
) -> DirectionRecord:
    """A new direction (409 when its code exists)."""
    async with work(runtime, principal) as uow:
        try:
            async with uow.session.begin_nested():
                direction = await queries.insert_direction(
                    uow.session, {**draft.model_dump(), "created_by": principal.subject}
                )
        except IntegrityError:
            raise Conflict(f"The direction {draft.code!r} exists.") from None
        changes = {
            name: {"old": None, "new": value}
            for name, value in draft.model_dump().items()
            if value is not None
        }
        await uow.audit(
            kind=KIND,
            entity_id=direction_audit_id(direction.code),
            action="created",
            version=1,
            changes=changes,
        )
        uow.stage(direction_changed(uow.outbox, direction, changes, uow.actor))
    return direction


async def update_direction(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    code: str,
    patch: DirectionPatch,
    expected: set[int],
) -> DirectionRecord:
    """Rename, describe or archive a direction (its code never changes)."""
    async with work(runtime, principal) as uow:
        current = await _direction(uow.session, code, lock=True)
        check_version(expected, current.version)
        given = patch.model_dump(exclude_unset=True)
        if given.get("name", "") is None or given.get("archived", False) is None:
            raise invalid_field("name", "name and archived cannot be null")
        changes = field_changes(current.model_dump(include=set(given)), given)
        if not changes:
            return current
        direction = await queries.update_direction(
            uow.session,
            code,
            {
                **given,
                "version": current.version + 1,
                "updated_by": principal.subject,
                "updated_at": func.now(),
            },
        )
        await uow.audit(
            kind=KIND,
            entity_id=direction_audit_id(code),
            action="updated",
            version=direction.version,
            changes=changes,
        )
        uow.stage(direction_changed(uow.outbox, direction, changes, uow.actor))
    return direction
