"""Blocked flags: which organizations and persons match the unwanted counterparty register.

The flag is computed on read (an EXISTS over the active entries), never stored, so an entry
added by INN or e-mail domain before the counterparty exists applies the moment it appears.
When a change makes a record blocked or unblocked, the change's transaction also writes an
audit entry and a ``blocked``/``unblocked`` event for it.
"""

from __future__ import annotations

import uuid
from typing import Any

from clientele_shared.service_layer import UnitOfWork
from sqlalchemy import ColumnElement, and_, any_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.domain.register import RegisterMatch
from clientele_directory.organizations.rules import Organization
from clientele_directory.publishing import (
    organization_blocked,
    organization_unblocked,
    person_blocked,
    person_unblocked,
)
from clientele_directory.tables import organizations, persons, unwanted_register

register = unwanted_register
active = register.c.removed_at.is_(None)


def matches_organization() -> ColumnElement[bool]:
    """SQL: an entry names the organization row, its INN or one of its e-mail domains."""
    return or_(
        register.c.organization_id == organizations.c.id,
        and_(organizations.c.inn.is_not(None), register.c.inn == organizations.c.inn),
        register.c.email_domain == any_(organizations.c.email_domains),
    )


def matches_person() -> ColumnElement[bool]:
    """SQL: an entry names the person row or one of his e-mail domains."""
    return or_(
        register.c.person_id == persons.c.id,
        register.c.email_domain == any_(persons.c.email_domains),
    )


def organization_blocked_expr() -> ColumnElement[bool]:
    """SQL: the organization row matches an active register entry."""
    return exists(select(1).select_from(register).where(active, matches_organization()))


def person_blocked_expr() -> ColumnElement[bool]:
    """SQL: the person row matches an active register entry."""
    return exists(select(1).select_from(register).where(active, matches_person()))


def _match(row: Any) -> RegisterMatch:
    return RegisterMatch(
        entry_id=row.id, basis=row.basis, reason=row.reason, decided_by=row.decided_by
    )


async def organization_matches(session: AsyncSession, org_id: uuid.UUID) -> list[RegisterMatch]:
    """The active entries an organization matches, oldest first."""
    rows = (
        await session.execute(
            select(register)
            .join(organizations, matches_organization())
            .where(organizations.c.id == org_id, active)
            .order_by(register.c.created_at, register.c.id)
        )
    ).all()
    return [_match(row) for row in rows]


async def person_matches(session: AsyncSession, person_id: uuid.UUID) -> list[RegisterMatch]:
    """The active entries a person matches, oldest first."""
    rows = (
        await session.execute(
            select(register)
            .join(persons, matches_person())
            .where(persons.c.id == person_id, active)
            .order_by(register.c.created_at, register.c.id)
        )
    ).all()
    return [_match(row) for row in rows]


async def announce_organization(
    uow: UnitOfWork,
    org: Organization,
    *,
    was_blocked: bool,
    entry_id: uuid.UUID | None = None,
) -> None:
    """Audit and publish a change of the organization's blocked flag, if there is one."""
    matches = await organization_matches(uow.session, org.id)
    blocked = bool(matches)
    if blocked == was_blocked:
        return
    actor = uow.actor
    if blocked:
        match = next((m for m in matches if m.entry_id == entry_id), matches[0])
        envelope = organization_blocked(
            uow.outbox,
            org,
            actor,
            entry_id=match.entry_id,
            basis=match.basis.value,
            reason=match.reason,
            decided_by=match.decided_by,
        )
        note = match.reason
    else:
        envelope = organization_unblocked(uow.outbox, org, actor, entry_id=entry_id)
        note = None
    await uow.audit(
        kind="organization",
        entity_id=org.id,
        action="blocked" if blocked else "unblocked",
        version=org.version,
        changes={"blocked": {"old": was_blocked, "new": blocked}},
        note=note,
    )
    uow.stage(envelope)


async def announce_person(
    uow: UnitOfWork,
    person_id: uuid.UUID,
    version: int,
    directions: list[str],
    *,
    was_blocked: bool,
    entry_id: uuid.UUID | None = None,
) -> None:
    """Audit and publish a change of the person's blocked flag, if there is one."""
    matches = await person_matches(uow.session, person_id)
    blocked = bool(matches)
    if blocked == was_blocked:
        return
    actor = uow.actor
    if blocked:
        match = next((m for m in matches if m.entry_id == entry_id), matches[0])
        envelope = person_blocked(
            uow.outbox,
            person_id,
            actor,
            directions=directions,
            entry_id=match.entry_id,
            basis=match.basis.value,
            reason=match.reason,
            decided_by=match.decided_by,
        )
        note = match.reason
    else:
        envelope = person_unblocked(
            uow.outbox, person_id, actor, directions=directions, entry_id=entry_id
        )
        note = None
    await uow.audit(
        kind="person",
        entity_id=person_id,
        action="blocked" if blocked else "unblocked",
        version=version,
        changes={"blocked": {"old": was_blocked, "new": blocked}},
        note=note,
    )
    uow.stage(envelope)
