"""Preferences operations: read and set one's own, and the preferences deliveries follow."""

from __future__ import annotations

from collections.abc import Sequence

from clientele_shared.auth.principal import Principal
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import unit_of_work
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_notifier.preferences import queries
from clientele_notifier.preferences.rules import Preferences


async def load_preferences(
    session: AsyncSession, employee_ids: Sequence[str]
) -> dict[str, Preferences]:
    """The stored preferences of these employees (those without any are left out)."""
    if not employee_ids:
        return {}
    found: dict[str, Preferences] = {}
    for row in await queries.preferences_of(session, employee_ids):
        try:
            found[row.employee_id] = Preferences(
                channels=row.channels,
                quiet_start=row.quiet_start,
                quiet_end=row.quiet_end,
                timezone=row.timezone,
                digest=row.digest,
            )
        except ValidationError:  # stored by an older rule: treat as no preferences
            found[row.employee_id] = Preferences()
    return found


async def my_preferences(*, runtime: ServiceRuntime, principal: Principal) -> Preferences:
    """The caller's preferences (every channel, no quiet hours, no digest until set)."""
    async with runtime.sessions() as session:
        found = await load_preferences(session, [principal.subject])
    return found.get(principal.subject, Preferences())


async def set_my_preferences(
    *, runtime: ServiceRuntime, principal: Principal, prefs: Preferences
) -> Preferences:
    async with unit_of_work(runtime.sessions, runtime.outbox, None, principal) as uow:
        await queries.upsert_preferences(
            uow.session, principal.subject, prefs.model_dump(mode="json")
        )
    return prefs
