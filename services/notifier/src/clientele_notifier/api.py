"""Notifier HTTP API: the caller's own in-app inbox (channels arrive with their own issue)."""

from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.runtime import ServiceRuntime, runtime_of
from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from clientele_notifier.domain import Notification
from clientele_notifier.store import notifications

router = APIRouter(prefix="/v1/inbox", tags=["inbox"])


@router.get("")
async def my_inbox(
    principal: CurrentPrincipal,
    runtime: Annotated[ServiceRuntime, Depends(runtime_of)],
    unread: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[Notification]:
    """Notifications addressed to the caller, newest first; nobody reads another's inbox."""
    stmt = select(notifications).where(notifications.c.recipient == principal.subject)
    if unread:
        stmt = stmt.where(notifications.c.read_at.is_(None))
    stmt = stmt.order_by(notifications.c.created_at.desc()).limit(limit)
    async with runtime.sessions() as session:
        rows = (await session.execute(stmt)).all()
    return [Notification.model_validate(row, from_attributes=True) for row in rows]
