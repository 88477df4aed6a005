"""Secret calendar feed URLs for calendar clients that cannot send a bearer token (Outlook,
Google Calendar): issue, rotate and revoke one per employee, and the feed itself.

The feed shows what the employee would see: the directions and roles are read from the employees
read model at every fetch (not fixed when the token was issued), so a change in the directory
applies at once, and a deactivated employee's feed answers 404, as do revoked and rotated tokens.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.auth.principal import Principal, Role
from clientele_shared.http.problems import NotFound
from clientele_shared.observability import get_logger
from fastapi import APIRouter, Response, status
from pydantic import BaseModel
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_interactions.api.common import ClockDep, Runtime
from clientele_interactions.api.exports import ICALENDAR, meetings_of
from clientele_interactions.domain.feeds import new_token, parse_token, secret_matches
from clientele_interactions.store import calendar_feed_tokens, employees

router = APIRouter(tags=["address book and calendar"])
log = get_logger(__name__)
NO_EMPLOYEE = "No such employee."
NO_FEED = "No such calendar feed."


class FeedIssued(BaseModel):
    """A new secret feed URL: shown once (only a digest of its secret is kept)."""

    feed_id: uuid.UUID
    url: str
    """Relative to the service's public address; subscribe to it in the calendar client."""
    created_at: datetime


class FeedRecord(BaseModel):
    """One issued feed token, live or not (who issued and revoked it, when)."""

    feed_id: uuid.UUID
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    revoked_by: str | None


async def _employee(session: AsyncSession, principal: Principal, employee_id: uuid.UUID) -> None:
    """The employee himself (by token subject or e-mail) or an administrator; 404 otherwise,
    and for an employee unknown here or deactivated."""
    row = (
        await session.execute(
            select(employees.c.email, employees.c.active).where(
                employees.c.employee_id == employee_id
            )
        )
    ).first()
    oneself = row is not None and (
        principal.subject == str(employee_id)
        or (principal.email is not None and principal.email.strip().lower() == row.email)
    )
    if row is None or not row.active or not (oneself or principal.has_role(Role.ADMIN)):
        raise NotFound(NO_EMPLOYEE)


async def _revoke(
    session: AsyncSession, principal: Principal, employee_id: uuid.UUID
) -> uuid.UUID | None:
    revoked: uuid.UUID | None = await session.scalar(
        update(calendar_feed_tokens)
        .where(
            calendar_feed_tokens.c.employee_id == employee_id,
            calendar_feed_tokens.c.revoked_at.is_(None),
        )
        .values(revoked_at=func.now(), revoked_by=principal.subject)
        .returning(calendar_feed_tokens.c.id)
    )
    return revoked


@router.post("/v1/employees/{employee_id}/calendar-feed", status_code=status.HTTP_201_CREATED)
async def issue_feed(
    employee_id: uuid.UUID, principal: CurrentPrincipal, runtime: Runtime, response: Response
) -> FeedIssued:
    """Issue a secret iCalendar feed URL of the employee's planned meetings, replacing (and so
    revoking) the one issued before. The employee himself or an administrator."""
    token = new_token()
    async with runtime.sessions() as session, session.begin():
        await _employee(session, principal, employee_id)
        replaced = await _revoke(session, principal, employee_id)
        created_at = await session.scalar(
            calendar_feed_tokens.insert()
            .values(
                id=token.feed_id,
                employee_id=employee_id,
                secret_sha256=token.secret_sha256,
                created_by=principal.subject,
            )
            .returning(calendar_feed_tokens.c.created_at)
        )
    assert created_at is not None
    log.info(
        "calendar feed issued",
        employee_id=str(employee_id),
        feed_id=str(token.feed_id),
        replaced=str(replaced) if replaced else None,
        by=principal.subject,
    )
    url = f"/v1/calendar-feeds/{token.token}.ics"
    response.headers["Cache-Control"] = "no-store"
    return FeedIssued(feed_id=token.feed_id, url=url, created_at=created_at)


@router.delete("/v1/employees/{employee_id}/calendar-feed", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_feed(
    employee_id: uuid.UUID, principal: CurrentPrincipal, runtime: Runtime
) -> None:
    """Revoke the employee's feed URL (404 when none is live)."""
    async with runtime.sessions() as session, session.begin():
        await _employee(session, principal, employee_id)
        revoked = await _revoke(session, principal, employee_id)
    if revoked is None:
        raise NotFound(NO_FEED)
    log.info(
        "calendar feed revoked",
        employee_id=str(employee_id),
        feed_id=str(revoked),
        by=principal.subject,
    )


@router.get("/v1/employees/{employee_id}/calendar-feed")
async def feed_history(
    employee_id: uuid.UUID, principal: CurrentPrincipal, runtime: Runtime
) -> list[FeedRecord]:
    """Every feed token issued for the employee, newest first (never the secret)."""
    async with runtime.sessions() as session:
        await _employee(session, principal, employee_id)
        rows = (
            await session.execute(
                select(
                    calendar_feed_tokens.c.id.label("feed_id"),
                    calendar_feed_tokens.c.created_at,
                    calendar_feed_tokens.c.created_by,
                    calendar_feed_tokens.c.revoked_at,
                    calendar_feed_tokens.c.revoked_by,
                )
                .where(calendar_feed_tokens.c.employee_id == employee_id)
                .order_by(calendar_feed_tokens.c.created_at.desc())
            )
        ).all()
    return [FeedRecord.model_validate(row, from_attributes=True) for row in rows]


@router.get(
    "/v1/calendar-feeds/{token}.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}, "description": "iCalendar feed"}},
)
async def calendar_feed(
    token: str,
    runtime: Runtime,
    clock: ClockDep,
) -> Response:
    """The employee's planned meetings as iCalendar, by the secret URL alone (no bearer
    token): those at clients the employee sees now. 404 for an unknown, revoked or rotated
    token (malformed ones too) and for a deactivated employee."""
    parsed = parse_token(token)
    if parsed is None:
        raise NotFound(NO_FEED)
    feed_id, secret = parsed
    async with runtime.sessions() as session:
        row = (
            await session.execute(
                select(
                    calendar_feed_tokens.c.employee_id,
                    calendar_feed_tokens.c.secret_sha256,
                    employees.c.roles,
                    employees.c.directions,
                )
                .join(employees, employees.c.employee_id == calendar_feed_tokens.c.employee_id)
                .where(
                    calendar_feed_tokens.c.id == feed_id,
                    calendar_feed_tokens.c.revoked_at.is_(None),
                    employees.c.active,
                )
            )
        ).first()
        if row is None or not secret_matches(row.secret_sha256, secret):
            raise NotFound(NO_FEED)
        employee = Principal(
            subject=str(row.employee_id),
            roles=frozenset(row.roles),
            directions=frozenset(row.directions),
        )
        calendar = await meetings_of(session, employee, row.employee_id, clock.now())
    return Response(
        calendar,
        media_type=ICALENDAR,
        headers={"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"},
    )
