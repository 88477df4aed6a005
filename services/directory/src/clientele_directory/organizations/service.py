"""Organization operations: each one a unit of work (transaction, audit entry, outbox)."""

from __future__ import annotations

import uuid

from clientele_shared.auth.access import ensure_visible, writable_directions
from clientele_shared.auth.principal import Principal
from clientele_shared.db import statement_session
from clientele_shared.http.concurrency import check_version
from clientele_shared.http.problems import NotFound, invalid, invalid_field
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import (
    AuditEntry,
    Versioned,
    audit_trail,
    restore,
    soft_delete,
    write_version,
)
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.attributes.rules import EntityKind
from clientele_directory.attributes.service import patch_attributes, resolve_attributes
from clientele_directory.employees import service as employees
from clientele_directory.organizations import queries
from clientele_directory.organizations.rules import (
    Organization,
    OrganizationDraft,
    OrganizationPatch,
    PatchRejected,
    apply_patch,
    changes_between,
    created_changes,
    moved_directions,
    storage_values,
)
from clientele_directory.publishing import (
    organization_created,
    organization_deleted,
    organization_restored,
    organization_updated,
)
from clientele_directory.register import service as register
from clientele_directory.search.rules import (
    Cursor,
    CursorError,
    decode_cursor,
    encode_cursor,
    fingerprint,
)
from clientele_directory.tables import audit_log, organizations
from clientele_directory.work import work

KIND = "organization"
ORGANIZATION = Versioned(organizations, KIND)
_NOT_FOUND = "No such organization."


async def load_organization(
    session: AsyncSession, org_id: uuid.UUID, *, for_update: bool = False
) -> Organization | None:
    """One organization (deleted ones too), optionally locked for the rest of the transaction."""
    return await queries.load(session, org_id, for_update=for_update)


async def visible_organization(
    session: AsyncSession,
    principal: Principal,
    org_id: uuid.UUID,
    *,
    for_update: bool = False,
    deleted: bool | None = False,
) -> Organization:
    """The organization if the principal may see it (404 otherwise).

    ``deleted``: False for live records only, True for deleted ones only, None for either.
    """
    org = await queries.load(session, org_id, for_update=for_update)
    if org is None or (deleted is not None and (org.deleted_at is not None) != deleted):
        raise NotFound(_NOT_FOUND)
    ensure_visible(principal, org.directions, _NOT_FOUND)
    return org


async def create_organization(
    *, runtime: ServiceRuntime, principal: Principal, draft: OrganizationDraft
) -> Organization:
    """Register an organization in directions the caller works in (403 outside them)."""
    writable_directions(principal, draft.directions)
    org_id = uuid.uuid4()
    async with work(runtime, principal) as uow:
        await employees.check_responsible(uow.session, draft.responsible_employee_id)
        attributes = await resolve_attributes(
            uow.session, principal, EntityKind.ORGANIZATION, {}, draft.attributes, creating=True
        )
        draft = draft.model_copy(update={"attributes": attributes})
        await queries.insert_organization(
            uow.session,
            {
                "id": org_id,
                **storage_values(draft),
                "version": 1,
                "created_by": principal.subject,
                "updated_by": principal.subject,
            },
        )
        org = await queries.load(uow.session, org_id)
        assert org is not None
        await uow.audit(
            kind=KIND,
            entity_id=org.id,
            action="created",
            version=1,
            changes=created_changes(org),
        )
        uow.stage(organization_created(uow.outbox, org, uow.actor))
        await register.announce_organization(uow, org, was_blocked=False)
    return org


async def get_organization(
    *, runtime: ServiceRuntime, principal: Principal, org_id: uuid.UUID, include_deleted: bool
) -> Organization:
    """One organization; 404 when it does not exist, is deleted (unless ``include_deleted``)
    or lies outside the caller's directions."""
    async with statement_session(runtime.engine) as session:
        return await visible_organization(
            session, principal, org_id, deleted=None if include_deleted else False
        )


LIST_ORDER = "legal_name"
"""The order of ``GET /v1/organizations`` (what its cursors are bound to)."""


async def list_organizations(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    deleted: bool,
    limit: int,
    cursor: str | None = None,
) -> tuple[list[Organization], str | None]:
    """A page of the organizations the principal sees, by legal name, and the cursor of the
    next page (None after the last)."""
    bound = fingerprint("organizations", str(deleted))
    after: tuple[str, uuid.UUID] | None = None
    if cursor is not None:
        try:
            name, org_id = decode_cursor(cursor, sort=LIST_ORDER, fingerprint=bound, size=2)
            after = (str(name), uuid.UUID(str(org_id)))
        except (CursorError, ValueError) as exc:
            raise invalid_field("cursor", str(exc), "cursor") from None
    async with runtime.sessions() as session:
        page = await queries.list_visible(
            session, principal, deleted=deleted, limit=limit + 1, after=after
        )
    if len(page) <= limit:
        return page, None
    last = page[limit - 1]
    return page[:limit], encode_cursor(Cursor(LIST_ORDER, (last.legal_name, str(last.id)), bound))


async def update_organization(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    org_id: uuid.UUID,
    patch: OrganizationPatch,
    expected: set[int],
) -> Organization:
    """Apply a merge patch; moving into or out of a direction needs its membership (403); a
    patch that changes nothing answers the record as it is, without a new version."""
    async with work(runtime, principal) as uow:
        current = await visible_organization(uow.session, principal, org_id, for_update=True)
        check_version(expected, current.version)
        try:
            patched = apply_patch(current, patch)
        except PatchRejected as exc:
            raise invalid(exc.errors) from None
        patched = await patch_attributes(
            uow.session, principal, EntityKind.ORGANIZATION, current.attributes, patch, patched
        )
        changes = changes_between(current, patched)
        if not changes:
            return current
        writable_directions(principal, moved_directions(current.directions, patched.directions))
        if "responsible_employee_id" in changes:
            await employees.check_responsible(uow.session, patched.responsible_employee_id)
        await write_version(
            uow,
            ORGANIZATION,
            org_id,
            current=current.version,
            expected=expected,
            values=storage_values(patched),
            action="updated",
            changes=changes,
        )
        org = await queries.load(uow.session, org_id)
        assert org is not None
        uow.stage(
            organization_updated(
                uow.outbox, org, changes, uow.actor, previous_directions=current.directions
            )
        )
        await register.announce_organization(uow, org, was_blocked=current.blocked)
    return org


async def delete_organization(
    *, runtime: ServiceRuntime, principal: Principal, org_id: uuid.UUID, expected: set[int]
) -> int:
    """Soft-delete (restorable); needs membership of all its directions. Answers the version."""
    async with work(runtime, principal) as uow:
        current = await visible_organization(uow.session, principal, org_id, for_update=True)
        org = current.model_copy(update={"version": current.version + 1})
        event = organization_deleted(uow.outbox, org, uow.actor)
        return await soft_delete(
            uow, ORGANIZATION, current, expected, writer=principal, events=[event]
        )


async def restore_organization(
    *, runtime: ServiceRuntime, principal: Principal, org_id: uuid.UUID, expected: set[int]
) -> Organization:
    """Bring a deleted organization back (409 when it is not deleted or was merged away)."""
    async with work(runtime, principal) as uow:
        current = await visible_organization(
            uow.session, principal, org_id, for_update=True, deleted=None
        )
        await restore(uow, ORGANIZATION, current, expected, what="organization", writer=principal)
        org = await queries.load(uow.session, org_id)
        assert org is not None
        uow.stage(organization_restored(uow.outbox, org, uow.actor))
    return org


async def organization_audit(
    *, runtime: ServiceRuntime, principal: Principal, org_id: uuid.UUID, after: int, limit: int
) -> list[AuditEntry]:
    """Every change of the organization (deleted ones too): who, when, what, old and new."""
    async with runtime.sessions() as session:
        await visible_organization(session, principal, org_id, deleted=None)
        return await audit_trail(session, audit_log, KIND, org_id, after=after, limit=limit)
