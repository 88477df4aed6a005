"""List operations: each one a unit of work (transaction, audit entry, outbox).

A list is seen by whoever shares one of its directions; its members are shown only when the
reader may see them, so two readers of one list may see different members.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import IO, Any

from clientele_shared.auth.access import writable_directions
from clientele_shared.auth.principal import Principal
from clientele_shared.http.concurrency import check_version
from clientele_shared.http.problems import Conflict, NotFound, ProblemError, invalid
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import (
    AuditEntry,
    UnitOfWork,
    Versioned,
    audit_trail,
    soft_delete,
    write_version,
)
from pydantic import ValidationError
from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.lists import queries
from clientele_directory.lists.rules import (
    ListDraft,
    ListKind,
    ListPatch,
    MembershipChange,
    MembershipRequest,
    OrganizationList,
    apply_list_patch,
    chunks,
    list_changes,
    storage_values,
    wanted_members,
)
from clientele_directory.publishing import list_changed, list_membership_changed
from clientele_directory.search.rules import OrganizationFilter, OrganizationSort
from clientele_directory.search.schemas import OrganizationPage
from clientele_directory.search.service import (
    filter_conditions,
    prepare_search,
    search_organizations_page,
)
from clientele_directory.tables import audit_log, organization_lists, organizations
from clientele_directory.tabular import TabularError, read_rows
from clientele_directory.work import work

KIND = "organization_list"
LIST = Versioned(organization_lists, KIND)
_NOT_FOUND = "No such list."
MAX_UPLOAD_ROWS = 100_000


async def visible_list(
    session: AsyncSession, principal: Principal, list_id: uuid.UUID, *, for_update: bool = False
) -> OrganizationList:
    """The live list if the principal shares one of its directions (404 otherwise)."""
    found = await queries.visible(session, principal, list_id, for_update=for_update)
    if found is None:
        raise NotFound(_NOT_FOUND)
    return found


def list_filter(found: OrganizationList) -> tuple[OrganizationFilter, list[ColumnElement[bool]]]:
    """What a list's members are: a dynamic list's filter, or a static list's membership."""
    if found.kind is ListKind.DYNAMIC:
        assert found.filter is not None
        return found.filter, []
    return OrganizationFilter(), [queries.member_condition(found.id)]


async def create_list(
    *, runtime: ServiceRuntime, principal: Principal, draft: ListDraft
) -> OrganizationList:
    """A static or dynamic list in directions the caller works in (403 outside them)."""
    writable_directions(principal, draft.directions)
    list_id = uuid.uuid4()
    async with work(runtime, principal) as uow:
        found = await queries.insert_list(
            uow.session,
            {
                "id": list_id,
                **storage_values(draft),
                "version": 1,
                "created_by": principal.subject,
                "updated_by": principal.subject,
            },
        )
        await uow.audit(
            kind=KIND,
            entity_id=list_id,
            action="created",
            version=1,
            changes={k: {"old": None, "new": v} for k, v in found.fields().items() if v},
        )
        uow.stage(list_changed(uow.outbox, found, "created", uow.actor))
    return found


async def list_lists(
    *, runtime: ServiceRuntime, principal: Principal, limit: int
) -> list[OrganizationList]:
    """The lists the caller may see, by name."""
    async with runtime.sessions() as session:
        return await queries.list_visible(session, principal, limit=limit)


async def get_list(
    *, runtime: ServiceRuntime, principal: Principal, list_id: uuid.UUID
) -> OrganizationList:
    async with runtime.sessions() as session:
        return await visible_list(session, principal, list_id)


async def update_list(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    list_id: uuid.UUID,
    patch: ListPatch,
    expected: set[int],
) -> OrganizationList:
    """Rename, describe, change a dynamic list's filter or move the list; a patch that changes
    nothing answers the list as it is, without a new version."""
    async with work(runtime, principal) as uow:
        current = await visible_list(uow.session, principal, list_id, for_update=True)
        check_version(expected, current.version)
        try:
            patched = apply_list_patch(current, patch)
        except ValidationError as exc:
            raise invalid([dict(e) for e in exc.errors(include_url=False)]) from None
        changes = list_changes(current, patched)
        if not changes:
            return current
        writable_directions(principal, set(current.directions) ^ set(patched.directions))
        await write_version(
            uow,
            LIST,
            list_id,
            current=current.version,
            expected=expected,
            values=storage_values(patched),
            action="updated",
            changes=changes,
        )
        found = await queries.load(uow.session, list_id)
        uow.stage(list_changed(uow.outbox, found, "updated", uow.actor, changes))
    return found


async def delete_list(
    *, runtime: ServiceRuntime, principal: Principal, list_id: uuid.UUID, expected: set[int]
) -> int:
    """Soft-delete a list (its members are kept with it); answers the new version."""
    async with work(runtime, principal) as uow:
        current = await visible_list(uow.session, principal, list_id, for_update=True)
        gone = current.model_copy(update={"version": current.version + 1})
        event = list_changed(uow.outbox, gone, "deleted", uow.actor)
        return await soft_delete(uow, LIST, current, expected, writer=principal, events=[event])


async def list_audit(
    *, runtime: ServiceRuntime, principal: Principal, list_id: uuid.UUID, after: int, limit: int
) -> list[AuditEntry]:
    """The list's changes; membership changes name only the organizations the caller sees
    (an entry that moved none of them is left out: a shared list shows no other direction's
    members, nor who added them)."""
    async with runtime.sessions() as session:
        await visible_list(session, principal, list_id)
        trail = await audit_trail(session, audit_log, KIND, list_id, after=after, limit=limit)
        if principal.sees_all_directions:
            return trail
        mentioned = {
            uuid.UUID(value)
            for entry in trail
            for value in _member_change(entry).get("added_ids", [])
            + _member_change(entry).get("removed_ids", [])
        }
        seen = await queries.visible_organizations(session, principal, mentioned, live=False)
    return [shown for entry in trail if (shown := _as_seen(entry, seen)) is not None]


def _member_change(entry: AuditEntry) -> dict[str, Any]:
    """The `members` change of a `members_changed` entry ({} for any other entry)."""
    if entry.action != "members_changed":
        return {}
    new = entry.changes.get("members", {}).get("new")
    return new if isinstance(new, dict) else {}


def _as_seen(entry: AuditEntry, seen: set[uuid.UUID]) -> AuditEntry | None:
    """The entry with only the members in `seen`; None when it moved none of them."""
    change = _member_change(entry)
    if not change:
        return entry
    added = [i for i in change.get("added_ids", []) if uuid.UUID(i) in seen]
    removed = [i for i in change.get("removed_ids", []) if uuid.UUID(i) in seen]
    if not added and not removed:
        return None
    members = {
        "added": len(added),
        "removed": len(removed),
        "added_ids": added,
        "removed_ids": removed,
    }
    return entry.model_copy(update={"changes": {"members": {"old": None, "new": members}}})


async def list_members(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    list_id: uuid.UUID,
    sort: OrganizationSort,
    limit: int,
    cursor: str | None,
) -> OrganizationPage:
    """The members the caller may see, a page at a time (a dynamic list's filter is evaluated
    now)."""
    async with runtime.sessions() as session, session.begin():
        found = await visible_list(session, principal, list_id)
        flt, extra = list_filter(found)
        return await search_organizations_page(
            session,
            runtime,
            principal,
            flt,
            sort=sort,
            limit=limit,
            cursor=cursor,
            extra=extra,
            bound_to=f"list:{list_id}",
        )


async def _record_members(
    uow: UnitOfWork,
    found: OrganizationList,
    *,
    added: list[uuid.UUID],
    removed: list[uuid.UUID],
) -> None:
    """The audit entry and the membership events of a change of members (none for no change)."""
    if not added and not removed:
        return
    await uow.audit(
        kind=KIND,
        entity_id=found.id,
        action="members_changed",
        version=found.version,
        changes={
            "members": {
                "old": None,
                "new": {
                    "added": len(added),
                    "removed": len(removed),
                    "added_ids": [str(i) for i in added[:1000]],
                    "removed_ids": [str(i) for i in removed[:1000]],
                },
            }
        },
    )
    for part in chunks(added):
        uow.stage(list_membership_changed(uow.outbox, found, uow.actor, added=part))
    for part in chunks(removed):
        uow.stage(list_membership_changed(uow.outbox, found, uow.actor, removed=part))


async def _static_list(
    uow: UnitOfWork, principal: Principal, list_id: uuid.UUID
) -> OrganizationList:
    """The visible list locked for a change of members (409 for a dynamic list)."""
    found = await visible_list(uow.session, principal, list_id, for_update=True)
    if found.kind is not ListKind.STATIC:
        raise Conflict("A dynamic list's members are its filter's result; change the filter.")
    return found


async def add_members(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    list_id: uuid.UUID,
    request: MembershipRequest,
) -> MembershipChange:
    """Add organizations to a static list by id, or every organization a filter finds now.
    Organizations the caller may not see are never added (reported as not found)."""
    async with work(runtime, principal) as uow:
        found = await _static_list(uow, principal, list_id)
        not_found: list[str] = []
        if request.organization_ids is not None:
            wanted = list(dict.fromkeys(request.organization_ids))
            seen = await queries.visible_organizations(uow.session, principal, set(wanted))
            not_found = [str(i) for i in wanted if i not in seen]
            conditions: list[ColumnElement[bool]] = (
                [organizations.c.id.in_(sorted(seen))] if seen else []
            )
            total = len(seen)
        else:
            assert request.filter is not None
            await prepare_search(uow.session, runtime)
            conditions = await filter_conditions(uow.session, principal, request.filter)
            total = -1
        added = (
            await queries.add_where(uow.session, found.id, principal.subject, conditions)
            if conditions
            else []
        )
        await _record_members(uow, found, added=added, removed=[])
    unchanged = max(total - len(added), 0) if total >= 0 else 0
    return MembershipChange(added=len(added), unchanged=unchanged, not_found=not_found)


async def remove_members(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    list_id: uuid.UUID,
    request: MembershipRequest,
) -> MembershipChange:
    """Remove organizations from a static list (by id; only members the caller may see)."""
    if request.organization_ids is None:
        raise invalid([{"loc": ("organization_ids",), "msg": "give the ids", "type": "missing"}])
    async with work(runtime, principal) as uow:
        found = await _static_list(uow, principal, list_id)
        wanted = list(dict.fromkeys(request.organization_ids))
        seen = await queries.visible_organizations(uow.session, principal, set(wanted))
        removed = await queries.remove(uow.session, list_id, seen)
        await _record_members(uow, found, added=[], removed=removed)
    return MembershipChange(
        removed=len(removed),
        unchanged=len(seen) - len(removed),
        not_found=[str(i) for i in wanted if i not in seen],
    )


async def upload_members(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    list_id: uuid.UUID,
    file: IO[bytes],
    filename: str | None,
    column: str | None,
) -> MembershipChange:
    """Add the organizations an .xlsx or CSV file names, by INN or by id; rows naming no
    organization the caller sees are reported by row number, a broken file is a 422 problem
    and adds nothing."""
    max_rows = int(getattr(runtime.settings, "import_max_rows", MAX_UPLOAD_ROWS))
    # reading a spreadsheet is CPU work: off the event loop, which keeps serving meanwhile
    wanted, not_found = await asyncio.to_thread(_read_upload, file, filename, column, max_rows)
    async with work(runtime, principal) as uow:
        found = await _static_list(uow, principal, list_id)
        inns = [k for k in wanted if not k.startswith("id:")]
        ids = [uuid.UUID(k[3:]) for k in wanted if k.startswith("id:")]
        matched = await queries.matching_organizations(uow.session, principal, inns=inns, ids=ids)
        hit_keys = {f"id:{row.id}" for row in matched} | {row.inn for row in matched if row.inn}
        for key, numbers in wanted.items():
            if key not in hit_keys:
                not_found.extend(f"row {n}" for n in numbers)
        chosen = sorted({row.id for row in matched})
        added = (
            await queries.add_where(
                uow.session, found.id, principal.subject, [organizations.c.id.in_(chosen)]
            )
            if chosen
            else []
        )
        await _record_members(uow, found, added=added, removed=[])
    return MembershipChange(
        added=len(added), unchanged=len(chosen) - len(added), not_found=not_found
    )


def _read_upload(
    file: IO[bytes], filename: str | None, column: str | None, max_rows: int
) -> tuple[dict[str, list[int]], list[str]]:
    """The organizations an uploaded file names (key -> row numbers) and the rows naming none;
    a 422 problem for a file that cannot be read."""
    try:
        return wanted_members(read_rows(file, filename), column, max_rows)
    except TabularError as exc:
        raise ProblemError(
            422,
            "Unreadable File",
            f"The file cannot be read: {exc}.",
            kind="unreadable-file",
        ) from None
