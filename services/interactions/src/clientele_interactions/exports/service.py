"""Address book and calendar operations: the vCards and the meetings feed the caller may see,
and the secret feed URLs (issue, revoke, list, fetch)."""

from __future__ import annotations

import uuid
from datetime import datetime

from clientele_shared.auth.principal import Principal, Role
from clientele_shared.calendar_feeds import new_token, parse_token, secret_matches
from clientele_shared.http.problems import NotFound
from clientele_shared.observability import get_logger
from clientele_shared.runtime import ServiceRuntime
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_interactions.clients.rules import full_name
from clientele_interactions.exports import queries
from clientele_interactions.exports.rules import (
    Contact,
    FeedIssued,
    FeedRecord,
    Meeting,
    VCardVersion,
    meetings_calendar,
    vcards,
)
from clientele_interactions.log.rules import is_overdue

log = get_logger(__name__)
NO_EMPLOYEE = "No such employee."
NO_FEED = "No such calendar feed."


async def export_persons(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    now: datetime,
    version: VCardVersion,
    organization_id: uuid.UUID | None,
) -> str:
    """The persons visible to the caller as vCards, with the position at a visible client."""
    async with runtime.sessions() as session:
        rows = await queries.persons_with_positions(session, principal, now.date(), organization_id)
    contacts = [
        Contact(
            person_id=row.person_id,
            last_name=row.last_name,
            first_name=row.first_name,
            middle_name=row.middle_name,
            full_name=full_name(dict(row._mapping)),
            emails=list(row.emails),
            phones=list(row.phones),
            organization=row.short_name or row.legal_name,
            position=row.position,
            updated_at=row.updated_at,
        )
        for row in rows
    ]
    return vcards(contacts, version)


async def meetings_of(
    session: AsyncSession, principal: Principal, employee_id: uuid.UUID, now: datetime
) -> bytes:
    """The employee's planned meetings at clients visible to ``principal`` as iCalendar."""
    rows = await queries.planned_meetings(session, principal, employee_id)
    meetings = [
        Meeting(
            interaction_id=row.id,
            subject=row.subject,
            client=row.short_name or row.legal_name,
            starts_at=row.due_at,
            duration_seconds=row.duration_seconds,
            notes=row.notes,
            version=row.version,
            updated_at=row.updated_at,
            overdue=is_overdue(row.status, row.due_at, now),
        )
        for row in rows
    ]
    return meetings_calendar(employee_id, meetings, now)


async def meetings_feed(
    *, runtime: ServiceRuntime, principal: Principal, employee_id: uuid.UUID, now: datetime
) -> bytes:
    async with runtime.sessions() as session:
        return await meetings_of(session, principal, employee_id, now)


async def _employee(session: AsyncSession, principal: Principal, employee_id: uuid.UUID) -> None:
    """The employee himself (by token subject or e-mail) or an administrator; 404 otherwise,
    and for an employee unknown here or deactivated."""
    row = await queries.employee(session, employee_id)
    oneself = row is not None and (
        principal.subject == str(employee_id)
        or (principal.email is not None and principal.email.strip().lower() == row.email)
    )
    if row is None or not row.active or not (oneself or principal.has_role(Role.ADMIN)):
        raise NotFound(NO_EMPLOYEE)


async def issue_feed(
    *, runtime: ServiceRuntime, principal: Principal, employee_id: uuid.UUID
) -> FeedIssued:
    """Issue a secret iCalendar feed URL of the employee's planned meetings, replacing (and so
    revoking) the one issued before. The employee himself or an administrator."""
    token = new_token()
    async with runtime.sessions() as session, session.begin():
        await _employee(session, principal, employee_id)
        replaced = await queries.revoke_feed(session, employee_id, principal.subject)
        created_at = await queries.insert_feed(
            session,
            feed_id=token.feed_id,
            employee_id=employee_id,
            secret_sha256=token.secret_sha256,
            created_by=principal.subject,
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
    return FeedIssued(feed_id=token.feed_id, url=url, created_at=created_at)


async def revoke_feed(
    *, runtime: ServiceRuntime, principal: Principal, employee_id: uuid.UUID
) -> None:
    """Revoke the employee's feed URL (404 when none is live)."""
    async with runtime.sessions() as session, session.begin():
        await _employee(session, principal, employee_id)
        revoked = await queries.revoke_feed(session, employee_id, principal.subject)
    if revoked is None:
        raise NotFound(NO_FEED)
    log.info(
        "calendar feed revoked",
        employee_id=str(employee_id),
        feed_id=str(revoked),
        by=principal.subject,
    )


async def feed_history(
    *, runtime: ServiceRuntime, principal: Principal, employee_id: uuid.UUID
) -> list[FeedRecord]:
    """Every feed token issued for the employee, newest first (never the secret)."""
    async with runtime.sessions() as session:
        await _employee(session, principal, employee_id)
        rows = await queries.feeds_of(session, employee_id)
    return [FeedRecord.model_validate(row, from_attributes=True) for row in rows]


async def calendar_feed(*, runtime: ServiceRuntime, token: str, now: datetime) -> bytes:
    """The employee's planned meetings as iCalendar, by the secret URL alone: those at clients
    the employee sees now. 404 for an unknown, revoked or rotated token (malformed ones too)
    and for a deactivated employee."""
    parsed = parse_token(token)
    if parsed is None:
        raise NotFound(NO_FEED)
    feed_id, secret = parsed
    async with runtime.sessions() as session:
        row = await queries.live_feed(session, feed_id)
        if row is None or not secret_matches(row.secret_sha256, secret):
            raise NotFound(NO_FEED)
        employee = Principal(
            subject=str(row.employee_id),
            roles=frozenset(row.roles),
            directions=frozenset(row.directions),
        )
        return await meetings_of(session, employee, row.employee_id, now)
