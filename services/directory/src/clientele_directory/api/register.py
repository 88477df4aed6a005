"""The unwanted counterparty register: only administrators and security officers keep it.

Anybody signed in may ask whether an INN, an e-mail or a domain is listed (``/check``), which is
what lead capture and imports use to warn before a counterparty is created.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from clientele_shared.auth.dependencies import CurrentPrincipal, require_roles
from clientele_shared.auth.principal import Principal, Role
from clientele_shared.http.params import EntryCursor
from clientele_shared.http.problems import NotFound
from fastapi import APIRouter, Depends, Query, status
from sqlalchemy import and_, any_, func, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.api.blocking import (
    active,
    announce_organization,
    announce_person,
    matches_organization,
    matches_person,
)
from clientele_directory.api.common import (
    Conflict,
    Runtime,
    actor_of,
    audit,
    audit_trail,
    invalid_field,
)
from clientele_directory.api.organizations import load_organization
from clientele_directory.api.persons import effective_directions
from clientele_directory.domain.common import (
    AuditEntry,
    LongText,
    email_domain,
    normalize_domain,
    normalize_email,
)
from clientele_directory.domain.organizations import valid_inn
from clientele_directory.domain.register import (
    RegisterBasis,
    RegisterCheck,
    RegisterEntry,
    RegisterEntryDraft,
    RegisterMatch,
)
from clientele_directory.events import register_changed
from clientele_directory.store import organizations, persons, unwanted_register

router = APIRouter(prefix="/v1/unwanted", tags=["unwanted counterparties"])
Keeper = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.SECURITY_OFFICER))]
KIND = "unwanted_entry"


def _entry(row: Any) -> RegisterEntry:
    return RegisterEntry.model_validate(row, from_attributes=True)


async def _affected_organizations(session: AsyncSession, entry_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await session.scalars(
        select(organizations.c.id)
        .join(unwanted_register, matches_organization())
        .where(unwanted_register.c.id == entry_id)
        .order_by(organizations.c.id)
    )
    return list(rows)


async def _affected_persons(session: AsyncSession, entry_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await session.scalars(
        select(persons.c.id)
        .join(unwanted_register, matches_person())
        .where(unwanted_register.c.id == entry_id)
        .order_by(persons.c.id)
    )
    return list(rows)


async def _announce_all(
    session: AsyncSession,
    runtime: Runtime,
    principal: Principal,
    entry_id: uuid.UUID,
    *,
    was_blocked: dict[str, set[uuid.UUID]],
    org_ids: list[uuid.UUID],
    person_ids: list[uuid.UUID],
) -> None:
    for org_id in org_ids:
        org = await load_organization(session, org_id)
        assert org is not None
        await announce_organization(
            session,
            runtime,
            principal,
            org,
            was_blocked=org_id in was_blocked["organizations"],
            entry_id=entry_id,
        )
    for person_id in person_ids:
        version = await session.scalar(select(persons.c.version).where(persons.c.id == person_id))
        await announce_person(
            session,
            runtime,
            principal,
            person_id,
            int(version or 1),
            await effective_directions(session, person_id),
            was_blocked=person_id in was_blocked["persons"],
            entry_id=entry_id,
        )


async def _blocked_now(
    session: AsyncSession, org_ids: list[uuid.UUID], person_ids: list[uuid.UUID]
) -> dict[str, set[uuid.UUID]]:
    """Which of these records match an active entry at this point of the transaction."""
    orgs = await session.scalars(
        select(organizations.c.id)
        .join(unwanted_register, and_(matches_organization(), active))
        .where(organizations.c.id.in_(org_ids))
    )
    people = await session.scalars(
        select(persons.c.id)
        .join(unwanted_register, and_(matches_person(), active))
        .where(persons.c.id.in_(person_ids))
    )
    return {"organizations": set(orgs), "persons": set(people)}


@router.post("", status_code=status.HTTP_201_CREATED)
async def add_entry(
    draft: RegisterEntryDraft, principal: Keeper, runtime: Runtime
) -> RegisterEntry:
    """List a counterparty (or an INN, or an e-mail domain) as unwanted, with the reason and who
    decided. Every matching organization and person becomes blocked (event and audit entry)."""
    entry_id = uuid.uuid4()
    async with runtime.sessions() as session, session.begin():
        if (
            draft.organization_id is not None
            and await load_organization(session, draft.organization_id) is None
        ):
            raise invalid_field("organization_id", "no such organization", "unknown_reference")
        if draft.person_id is not None and (
            await session.scalar(select(persons.c.id).where(persons.c.id == draft.person_id))
            is None
        ):
            raise invalid_field("person_id", "no such person", "unknown_reference")
        values = draft.model_dump(exclude={"reason", "decided_by"})
        try:
            async with session.begin_nested():
                row = (
                    await session.execute(
                        insert(unwanted_register)
                        .values(
                            id=entry_id,
                            basis=draft.basis.value,
                            **values,
                            reason=draft.reason,
                            decided_by=draft.decided_by,
                            created_by=principal.subject,
                        )
                        .returning(unwanted_register)
                    )
                ).one()
        except IntegrityError:
            raise Conflict("This counterparty is already in the register.") from None
        entry = _entry(row)
        org_ids = await _affected_organizations(session, entry_id)
        person_ids = await _affected_persons(session, entry_id)
        # blocked before this entry = matched by another active entry
        others = await _blocked_without(session, entry_id, org_ids, person_ids)
        await audit(
            session,
            principal,
            kind=KIND,
            entity_id=entry_id,
            action="created",
            version=None,
            changes={
                name: {"old": None, "new": value}
                for name, value in entry.model_dump(mode="json").items()
                if value is not None and name not in ("id", "created_at", "created_by")
            },
            note=draft.reason,
        )
        await runtime.outbox.add(
            session, register_changed(runtime.outbox, entry, actor_of(principal))
        )
        await _announce_all(
            session,
            runtime,
            principal,
            entry_id,
            was_blocked=others,
            org_ids=org_ids,
            person_ids=person_ids,
        )
    return entry


async def _blocked_without(
    session: AsyncSession,
    entry_id: uuid.UUID,
    org_ids: list[uuid.UUID],
    person_ids: list[uuid.UUID],
) -> dict[str, set[uuid.UUID]]:
    orgs = await session.scalars(
        select(organizations.c.id)
        .join(
            unwanted_register,
            and_(matches_organization(), active, unwanted_register.c.id != entry_id),
        )
        .where(organizations.c.id.in_(org_ids))
    )
    people = await session.scalars(
        select(persons.c.id)
        .join(
            unwanted_register,
            and_(matches_person(), active, unwanted_register.c.id != entry_id),
        )
        .where(persons.c.id.in_(person_ids))
    )
    return {"organizations": set(orgs), "persons": set(people)}


@router.get("")
async def list_entries(
    principal: Keeper,
    runtime: Runtime,
    basis: RegisterBasis | None = None,
    include_removed: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[RegisterEntry]:
    """The register, newest first (administrators and security officers)."""
    stmt = select(unwanted_register).order_by(
        unwanted_register.c.created_at.desc(), unwanted_register.c.id
    )
    if not include_removed:
        stmt = stmt.where(active)
    if basis is not None:
        stmt = stmt.where(unwanted_register.c.basis == basis.value)
    async with runtime.sessions() as session:
        rows = (await session.execute(stmt.limit(limit))).all()
    return [_entry(row) for row in rows]


@router.get("/check")
async def check(
    principal: CurrentPrincipal,
    runtime: Runtime,
    inn: Annotated[str | None, Query(max_length=20)] = None,
    email: Annotated[str | None, Query(max_length=320)] = None,
    domain: Annotated[str | None, Query(max_length=255)] = None,
) -> RegisterCheck:
    """Is this INN, e-mail address or domain unwanted? For warnings before a counterparty is
    created (lead capture, imports). Open to every signed-in user."""
    conditions = []
    try:
        inn = valid_inn(inn) if inn is not None else None
    except ValueError as exc:
        raise invalid_field("inn", str(exc), "inn", location="query") from None
    try:
        domain = normalize_domain(domain) if domain is not None else None
    except ValueError as exc:
        raise invalid_field("domain", str(exc), "domain", location="query") from None
    try:
        email = normalize_email(email) if email is not None else None
    except ValueError as exc:
        raise invalid_field("email", str(exc), "email", location="query") from None
    if inn is None and email is None and domain is None:
        raise invalid_field("inn", "give inn, email or domain", "missing", location="query")
    if inn is not None:
        conditions.append(unwanted_register.c.inn == inn)
        conditions.append(
            unwanted_register.c.organization_id.in_(
                select(organizations.c.id).where(organizations.c.inn == inn)
            )
        )
    domains = {d for d in (domain, email_domain(email) if email else None) if d}
    if domains:
        conditions.append(unwanted_register.c.email_domain.in_(sorted(domains)))
    if email is not None:
        conditions.append(
            unwanted_register.c.person_id.in_(
                select(persons.c.id).where(literal(email) == any_(persons.c.emails))
            )
        )
        conditions.append(
            unwanted_register.c.organization_id.in_(
                select(organizations.c.id).where(literal(email) == any_(organizations.c.emails))
            )
        )
    async with runtime.sessions() as session:
        rows = (
            await session.execute(
                select(unwanted_register)
                .where(active, or_(*conditions))
                .order_by(unwanted_register.c.created_at)
            )
        ).all()
    matches = [
        RegisterMatch(
            entry_id=row.id, basis=row.basis, reason=row.reason, decided_by=row.decided_by
        )
        for row in rows
    ]
    return RegisterCheck(blocked=bool(matches), matches=matches)


@router.get("/{entry_id}")
async def get_entry(entry_id: uuid.UUID, principal: Keeper, runtime: Runtime) -> RegisterEntry:
    async with runtime.sessions() as session:
        row = (
            await session.execute(
                select(unwanted_register).where(unwanted_register.c.id == entry_id)
            )
        ).first()
    if row is None:
        raise NotFound("No such register entry.")
    return _entry(row)


@router.get("/{entry_id}/audit")
async def entry_audit(
    entry_id: uuid.UUID,
    principal: Keeper,
    runtime: Runtime,
    after: EntryCursor = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditEntry]:
    """Who listed and who removed the entry, when and why."""
    async with runtime.sessions() as session:
        found = await session.scalar(
            select(unwanted_register.c.id).where(unwanted_register.c.id == entry_id)
        )
        if found is None:
            raise NotFound("No such register entry.")
        return await audit_trail(session, KIND, entry_id, after=after, limit=limit)


@router.delete("/{entry_id}")
async def remove_entry(
    entry_id: uuid.UUID,
    principal: Keeper,
    runtime: Runtime,
    reason: Annotated[LongText | None, Query(description="why the entry is removed")] = None,
) -> RegisterEntry:
    """Remove an entry (kept, marked removed); records no longer matching any entry become
    unblocked (event and audit entry)."""
    async with runtime.sessions() as session, session.begin():
        row = (
            await session.execute(
                select(unwanted_register)
                .where(unwanted_register.c.id == entry_id)
                .with_for_update()
            )
        ).first()
        if row is None:
            raise NotFound("No such register entry.")
        if row.removed_at is not None:
            raise Conflict("The entry was already removed.")
        org_ids = await _affected_organizations(session, entry_id)
        person_ids = await _affected_persons(session, entry_id)
        before = await _blocked_now(session, org_ids, person_ids)
        updated = (
            await session.execute(
                update(unwanted_register)
                .where(unwanted_register.c.id == entry_id)
                .values(removed_at=func.now(), removed_by=principal.subject, removal_reason=reason)
                .returning(unwanted_register)
            )
        ).one()
        await audit(
            session,
            principal,
            kind=KIND,
            entity_id=entry_id,
            action="removed",
            version=None,
            changes={"removed": {"old": False, "new": True}},
            note=reason,
        )
        await runtime.outbox.add(
            session, register_changed(runtime.outbox, _entry(updated), actor_of(principal))
        )
        await _announce_all(
            session,
            runtime,
            principal,
            entry_id,
            was_blocked=before,
            org_ids=org_ids,
            person_ids=person_ids,
        )
    return _entry(updated)
