"""Unwanted-counterparty register operations (administrators and security officers write).

A record's blocked flag is computed on read (``clientele_directory.blocking``), never stored, so
an entry added by INN or e-mail domain before the counterparty exists applies the moment it
appears. When a change makes a record blocked or unblocked, the change's unit of work also
writes an audit entry and a ``blocked``/``unblocked`` event for it (``announce_*``).
"""

from __future__ import annotations

import uuid
from typing import Any

from clientele_shared.auth.principal import Principal
from clientele_shared.http.problems import Conflict, NotFound, invalid_field
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import AuditEntry, UnitOfWork, audit_trail
from sqlalchemy.exc import IntegrityError

from clientele_directory.organizations import service as organizations
from clientele_directory.organizations.rules import Organization, valid_inn
from clientele_directory.persons import service as persons
from clientele_directory.publishing import (
    organization_blocked,
    organization_unblocked,
    person_blocked,
    person_unblocked,
    register_changed,
)
from clientele_directory.register import queries
from clientele_directory.register.rules import (
    RegisterBasis,
    RegisterCheck,
    RegisterEntry,
    RegisterEntryDraft,
    RegisterMatch,
)
from clientele_directory.tables import audit_log
from clientele_directory.values import email_domain, normalize_domain, normalize_email
from clientele_directory.work import work

KIND = "unwanted_entry"
_NOT_FOUND = "No such register entry."


def _match(row: Any) -> RegisterMatch:
    return RegisterMatch(
        entry_id=row.id, basis=row.basis, reason=row.reason, decided_by=row.decided_by
    )


async def announce_organization(
    uow: UnitOfWork,
    org: Organization,
    *,
    was_blocked: bool,
    entry_id: uuid.UUID | None = None,
) -> None:
    """Audit and publish a change of the organization's blocked flag, if there is one."""
    matches = [_match(row) for row in await queries.organization_matches(uow.session, org.id)]
    blocked = bool(matches)
    if blocked == was_blocked:
        return
    if blocked:
        match = next((m for m in matches if m.entry_id == entry_id), matches[0])
        envelope = organization_blocked(
            uow.outbox,
            org,
            uow.actor,
            entry_id=match.entry_id,
            basis=match.basis.value,
            reason=match.reason,
            decided_by=match.decided_by,
        )
        note = match.reason
    else:
        envelope = organization_unblocked(uow.outbox, org, uow.actor, entry_id=entry_id)
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
    matches = [_match(row) for row in await queries.person_matches(uow.session, person_id)]
    blocked = bool(matches)
    if blocked == was_blocked:
        return
    if blocked:
        match = next((m for m in matches if m.entry_id == entry_id), matches[0])
        envelope = person_blocked(
            uow.outbox,
            person_id,
            uow.actor,
            directions=directions,
            entry_id=match.entry_id,
            basis=match.basis.value,
            reason=match.reason,
            decided_by=match.decided_by,
        )
        note = match.reason
    else:
        envelope = person_unblocked(
            uow.outbox, person_id, uow.actor, directions=directions, entry_id=entry_id
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


async def _announce_all(
    uow: UnitOfWork,
    entry_id: uuid.UUID,
    *,
    was_blocked: dict[str, set[uuid.UUID]],
    org_ids: list[uuid.UUID],
    person_ids: list[uuid.UUID],
) -> None:
    for org_id in org_ids:
        org = await organizations.load_organization(uow.session, org_id)
        assert org is not None
        await announce_organization(
            uow, org, was_blocked=org_id in was_blocked["organizations"], entry_id=entry_id
        )
    for person_id in person_ids:
        version = await queries.person_version(uow.session, person_id)
        await announce_person(
            uow,
            person_id,
            int(version or 1),
            await persons.effective_directions(uow.session, person_id),
            was_blocked=person_id in was_blocked["persons"],
            entry_id=entry_id,
        )


async def add_entry(
    *, runtime: ServiceRuntime, principal: Principal, draft: RegisterEntryDraft
) -> RegisterEntry:
    """List a counterparty (or an INN, or an e-mail domain) as unwanted; every matching
    organization and person becomes blocked (event and audit entry)."""
    entry_id = uuid.uuid4()
    async with work(runtime, principal) as uow:
        session = uow.session
        if draft.organization_id is not None and not await queries.organization_exists(
            session, draft.organization_id
        ):
            raise invalid_field("organization_id", "no such organization", "unknown_reference")
        if draft.person_id is not None and not await queries.person_exists(
            session, draft.person_id
        ):
            raise invalid_field("person_id", "no such person", "unknown_reference")
        values = draft.model_dump(exclude={"reason", "decided_by"})
        try:
            async with session.begin_nested():
                entry = await queries.insert_entry(
                    session,
                    {
                        "id": entry_id,
                        "basis": draft.basis.value,
                        **values,
                        "reason": draft.reason,
                        "decided_by": draft.decided_by,
                        "created_by": principal.subject,
                    },
                )
        except IntegrityError:
            raise Conflict("This counterparty is already in the register.") from None
        org_ids = await queries.affected_organizations(session, entry)
        person_ids = await queries.affected_persons(session, entry)
        # blocked before this entry = matched by another active entry
        others = await queries.blocked(session, org_ids, person_ids, without=entry_id)
        await uow.audit(
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
        uow.stage(register_changed(uow.outbox, entry, uow.actor))
        await _announce_all(
            uow, entry_id, was_blocked=others, org_ids=org_ids, person_ids=person_ids
        )
    return entry


async def list_entries(
    *,
    runtime: ServiceRuntime,
    basis: RegisterBasis | None,
    include_removed: bool,
    limit: int,
) -> list[RegisterEntry]:
    """The register, newest first."""
    async with runtime.sessions() as session:
        return await queries.listed(
            session,
            basis=basis.value if basis is not None else None,
            include_removed=include_removed,
            limit=limit,
        )


async def check(
    *, runtime: ServiceRuntime, inn: str | None, email: str | None, domain: str | None
) -> RegisterCheck:
    """Is this INN, e-mail address or domain unwanted? (422 for malformed values)."""
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
    domains = {d for d in (domain, email_domain(email) if email else None) if d}
    async with runtime.sessions() as session:
        rows = await queries.matching(session, inn=inn, email=email, domains=domains)
    matches = [_match(row) for row in rows]
    return RegisterCheck(blocked=bool(matches), matches=matches)


async def get_entry(*, runtime: ServiceRuntime, entry_id: uuid.UUID) -> RegisterEntry:
    async with runtime.sessions() as session:
        entry = await queries.load(session, entry_id)
    if entry is None:
        raise NotFound(_NOT_FOUND)
    return entry


async def entry_audit(
    *, runtime: ServiceRuntime, entry_id: uuid.UUID, after: int, limit: int
) -> list[AuditEntry]:
    """Who listed and who removed the entry, when and why."""
    async with runtime.sessions() as session:
        if await queries.load(session, entry_id) is None:
            raise NotFound(_NOT_FOUND)
        return await audit_trail(session, audit_log, KIND, entry_id, after=after, limit=limit)


async def remove_entry(
    *, runtime: ServiceRuntime, principal: Principal, entry_id: uuid.UUID, reason: str | None
) -> RegisterEntry:
    """Remove an entry (kept, marked removed); records no longer matching any entry become
    unblocked (event and audit entry)."""
    async with work(runtime, principal) as uow:
        session = uow.session
        current = await queries.load(session, entry_id, lock=True)
        if current is None:
            raise NotFound(_NOT_FOUND)
        if current.removed_at is not None:
            raise Conflict("The entry was already removed.")
        org_ids = await queries.affected_organizations(session, current)
        person_ids = await queries.affected_persons(session, current)
        before = await queries.blocked(session, org_ids, person_ids)
        updated = await queries.mark_removed(
            session, entry_id, subject=principal.subject, reason=reason
        )
        await uow.audit(
            kind=KIND,
            entity_id=entry_id,
            action="removed",
            version=None,
            changes={"removed": {"old": False, "new": True}},
            note=reason,
        )
        uow.stage(register_changed(uow.outbox, updated, uow.actor))
        await _announce_all(
            uow, entry_id, was_blocked=before, org_ids=org_ids, person_ids=person_ids
        )
    return updated
