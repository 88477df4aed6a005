"""The employees read model: the directory's employees topic, as far as delivery needs it.

An e-mail to an employee given by id goes to the address the directory last announced, and an
inactive employee gets no e-mail. Events apply in version order: one older than the row (a
redelivery, a replay) changes nothing.
"""

from __future__ import annotations

from clientele_shared.events.schemas.directory import EmployeeCreated, EmployeeUpdated
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_notifier.employees import queries

KEPT = ("email", "name", "active")
"""The fields of an employee the notifier keeps."""


async def apply_created(session: AsyncSession, event: EmployeeCreated) -> None:
    await queries.upsert(
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
    await queries.upsert(session, str(event.employee_id), event.version, **changed)


async def is_active(session: AsyncSession, employee_id: str) -> bool:
    """False only for an employee the directory has deactivated (an unknown one may be new)."""
    return await queries.active(session, employee_id) is not False


async def apply(session: AsyncSession, payload: BaseModel) -> None:
    """Apply one event of the employees topic; direction events carry nothing delivery needs."""
    if isinstance(payload, EmployeeCreated):
        await apply_created(session, payload)
    elif isinstance(payload, EmployeeUpdated):
        await apply_updated(session, payload)
