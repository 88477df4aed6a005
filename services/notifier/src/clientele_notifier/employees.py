"""The employees read model: the directory's employees topic, as far as delivery needs it.

An e-mail to an employee given by id goes to the address the directory last announced, and an
inactive employee gets no e-mail. Events apply in version order: one older than the row (a
redelivery, a replay) changes nothing.
"""

from __future__ import annotations

from typing import Any

from clientele_shared.events.envelope import Envelope
from clientele_shared.events.inbox import Handler
from clientele_shared.events.schemas.directory import EmployeeCreated, EmployeeUpdated
from pydantic import BaseModel
from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_notifier.store import employees

KEPT = ("email", "name", "active")
"""The fields of an employee the notifier keeps."""


async def _upsert(session: AsyncSession, employee_id: str, version: int, **fields: Any) -> None:
    stmt = insert(employees).values(id=employee_id, version=version, **fields)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={**fields, "version": version, "updated_at": func.now()},
            where=employees.c.version < version,
        )
    )


async def apply_created(session: AsyncSession, event: EmployeeCreated) -> None:
    await _upsert(
        session,
        str(event.employee_id),
        event.version,
        email=event.email.lower(),
        name=event.name,
        active=event.active,
    )


async def apply_updated(session: AsyncSession, event: EmployeeUpdated) -> None:
    """Apply the changed fields the notifier keeps (an employee not seen before is kept with
    what this event tells)."""
    changed = {name: event.changes[name].new for name in KEPT if name in event.changes}
    if isinstance(changed.get("email"), str):
        changed["email"] = changed["email"].lower()
    await _upsert(session, str(event.employee_id), event.version, **changed)


def employees_handler() -> Handler:
    """Applies the employees topic; direction events carry nothing delivery needs."""

    async def handle(session: AsyncSession, envelope: Envelope, payload: BaseModel) -> None:
        if isinstance(payload, EmployeeCreated):
            await apply_created(session, payload)
        elif isinstance(payload, EmployeeUpdated):
            await apply_updated(session, payload)

    return handle
