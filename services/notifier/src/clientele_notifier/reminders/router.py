"""HTTP of reminders (admins and services)."""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.dependencies import require_roles
from clientele_shared.auth.principal import Principal, Role
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Depends

from clientele_notifier.reminders import service
from clientele_notifier.reminders.rules import Reminder

router = APIRouter(prefix="/v1/reminders", tags=["reminders"])
Operator = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.SERVICE))]


@router.get("/{reminder_id}")
async def get_reminder(
    reminder_id: uuid.UUID, principal: Operator, runtime: CurrentRuntime
) -> Reminder:
    """A reminder; a service sees only its own."""
    return await service.get_reminder(runtime=runtime, principal=principal, reminder_id=reminder_id)
