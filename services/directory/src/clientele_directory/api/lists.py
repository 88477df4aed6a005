"""Lists of organizations: static (members by hand, by a filter's result, by an uploaded file)
and dynamic (a saved filter evaluated on read).

A list is seen by whoever shares one of its directions; its members are shown only when the
reader may see them, so two readers of one list may see different members.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from clientele_shared.auth.access import visible_to, writable_directions
from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.auth.principal import Principal
from clientele_shared.http.concurrency import IfMatch, check_version, etag, required_versions
from clientele_shared.http.params import EntryCursor
from clientele_shared.http.problems import Conflict, NotFound, ProblemError, invalid
from clientele_shared.runtime import CurrentRuntime
from clientele_shared.service_layer import AuditEntry, actor_of
from fastapi import APIRouter, Form, Query, Response, UploadFile, status
from pydantic import ValidationError
from sqlalchemy import ColumnElement, delete, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.api.common import audit, audit_trail, soft_delete_values
from clientele_directory.domain.lists import (
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
)
from clientele_directory.imports.rules import map_headers
from clientele_directory.organizations.rules import valid_inn
from clientele_directory.publishing import list_changed, list_membership_changed
from clientele_directory.search.rules import OrganizationFilter, OrganizationSort
from clientele_directory.search.schemas import OrganizationPage
from clientele_directory.search.service import (
    filter_conditions,
    prepare_search,
    search_organizations_page,
)
from clientele_directory.tables import organization_list_members, organization_lists, organizations
from clientele_directory.tabular import TabularError, read_rows

router = APIRouter(prefix="/v1/lists", tags=["lists"])
KIND = "organization_list"
_NOT_FOUND = "No such list."
MAX_UPLOAD_ROWS = 100_000


def _from_row(row: Any) -> OrganizationList:
    return OrganizationList.model_validate(row, from_attributes=True)


async def visible_list(
    session: AsyncSession,
    principal: Principal,
    list_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> OrganizationList:
    """The live list if the principal shares one of its directions (404 otherwise)."""
    stmt = select(organization_lists).where(
        organization_lists.c.id == list_id,
        organization_lists.c.deleted_at.is_(None),
        visible_to(principal, organization_lists.c.directions),
    )
    if for_update:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).first()
    if row is None:
        raise NotFound(_NOT_FOUND)
    return _from_row(row)


def member_condition(found: OrganizationList) -> ColumnElement[bool]:
    """SQL: the organization row is a member of the static list."""
    return organizations.c.id.in_(
        select(organization_list_members.c.organization_id).where(
            organization_list_members.c.list_id == found.id
        )
    )


def list_filter(found: OrganizationList) -> tuple[OrganizationFilter, list[ColumnElement[bool]]]:
    """What a list's members are: a dynamic list's filter, or a static list's membership."""
    if found.kind is ListKind.DYNAMIC:
        assert found.filter is not None
        return found.filter, []
    return OrganizationFilter(), [member_condition(found)]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_list(
    draft: ListDraft, principal: CurrentPrincipal, runtime: CurrentRuntime, response: Response
) -> OrganizationList:
    """A static or dynamic list in directions the caller works in (403 outside them)."""
    writable_directions(principal, draft.directions)
    list_id = uuid.uuid4()
    async with runtime.sessions() as session, session.begin():
        row = (
            await session.execute(
                insert(organization_lists)
                .values(
                    id=list_id,
                    **storage_values(draft),
                    version=1,
                    created_by=principal.subject,
                    updated_by=principal.subject,
                )
                .returning(organization_lists)
            )
        ).one()
        found = _from_row(row)
        await audit(
            session,
            principal,
            kind=KIND,
            entity_id=list_id,
            action="created",
            version=1,
            changes={k: {"old": None, "new": v} for k, v in found.fields().items() if v},
        )
        await runtime.outbox.add(
            session, list_changed(runtime.outbox, found, "created", actor_of(principal))
        )
    response.headers["ETag"] = etag(1)
    response.headers["Location"] = f"/v1/lists/{list_id}"
    return found


@router.get("")
async def list_lists(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[OrganizationList]:
    """The lists the caller may see, by name."""
    async with runtime.sessions() as session:
        rows = (
            await session.execute(
                select(organization_lists)
                .where(
                    organization_lists.c.deleted_at.is_(None),
                    visible_to(principal, organization_lists.c.directions),
                )
                .order_by(organization_lists.c.name, organization_lists.c.id)
                .limit(limit)
            )
        ).all()
    return [_from_row(row) for row in rows]


@router.get("/{list_id}")
async def get_list(
    list_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime, response: Response
) -> OrganizationList:
    async with runtime.sessions() as session:
        found = await visible_list(session, principal, list_id)
    response.headers["ETag"] = etag(found.version)
    return found


@router.patch("/{list_id}")
async def update_list(
    list_id: uuid.UUID,
    patch: ListPatch,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> OrganizationList:
    """Rename, describe, change a dynamic list's filter or move the list (If-Match)."""
    wanted = required_versions(if_match)
    async with runtime.sessions() as session, session.begin():
        current = await visible_list(session, principal, list_id, for_update=True)
        check_version(wanted, current.version)
        try:
            patched = apply_list_patch(current, patch)
        except ValidationError as exc:
            raise invalid([dict(e) for e in exc.errors(include_url=False)]) from None
        changes = list_changes(current, patched)
        if not changes:
            response.headers["ETag"] = etag(current.version)
            return current
        writable_directions(principal, set(current.directions) ^ set(patched.directions))
        version = current.version + 1
        row = (
            await session.execute(
                update(organization_lists)
                .where(organization_lists.c.id == list_id)
                .values(
                    **storage_values(patched),
                    version=version,
                    updated_by=principal.subject,
                    updated_at=func.now(),
                )
                .returning(organization_lists)
            )
        ).one()
        await audit(
            session,
            principal,
            kind=KIND,
            entity_id=list_id,
            action="updated",
            version=version,
            changes=changes,
        )
        found = _from_row(row)
        await runtime.outbox.add(
            session,
            list_changed(runtime.outbox, found, "updated", actor_of(principal), changes),
        )
    response.headers["ETag"] = etag(found.version)
    return found


@router.delete("/{list_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_list(
    list_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> None:
    """Soft-delete a list (its members are kept with it); If-Match required."""
    wanted = required_versions(if_match)
    async with runtime.sessions() as session, session.begin():
        current = await visible_list(session, principal, list_id, for_update=True)
        check_version(wanted, current.version)
        writable_directions(principal, current.directions)
        version = current.version + 1
        await session.execute(
            update(organization_lists)
            .where(organization_lists.c.id == list_id)
            .values(**soft_delete_values(principal, version))
        )
        await audit(
            session, principal, kind=KIND, entity_id=list_id, action="deleted", version=version
        )
        gone = current.model_copy(update={"version": version})
        await runtime.outbox.add(
            session, list_changed(runtime.outbox, gone, "deleted", actor_of(principal))
        )
    response.headers["ETag"] = etag(version)


@router.get("/{list_id}/audit")
async def list_audit(
    list_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    after: EntryCursor = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditEntry]:
    """The list's changes; membership changes name only the organizations the caller sees
    (an entry that moved none of them is left out: a shared list shows no other direction's
    members, nor who added them)."""
    async with runtime.sessions() as session:
        await visible_list(session, principal, list_id)
        trail = await audit_trail(session, KIND, list_id, after=after, limit=limit)
        if principal.sees_all_directions:
            return trail
        mentioned = {
            uuid.UUID(value)
            for entry in trail
            for value in _member_change(entry).get("added_ids", [])
            + _member_change(entry).get("removed_ids", [])
        }
        seen = set(
            (
                await session.scalars(
                    select(organizations.c.id).where(
                        organizations.c.id.in_(mentioned),
                        visible_to(principal, organizations.c.directions),
                    )
                )
            ).all()
            if mentioned
            else []
        )
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


@router.get("/{list_id}/members")
async def list_members(
    list_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    sort: OrganizationSort = OrganizationSort.NAME,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
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


async def _publish(
    session: AsyncSession,
    runtime: CurrentRuntime,
    principal: Principal,
    found: OrganizationList,
    *,
    added: list[uuid.UUID],
    removed: list[uuid.UUID],
) -> None:
    if not added and not removed:
        return
    await audit(
        session,
        principal,
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
        await runtime.outbox.add(
            session,
            list_membership_changed(runtime.outbox, found, actor_of(principal), added=part),
        )
    for part in chunks(removed):
        await runtime.outbox.add(
            session,
            list_membership_changed(runtime.outbox, found, actor_of(principal), removed=part),
        )


def _static(found: OrganizationList) -> None:
    if found.kind is not ListKind.STATIC:
        raise Conflict("A dynamic list's members are its filter's result; change the filter.")


async def _add_where(
    session: AsyncSession,
    principal: Principal,
    found: OrganizationList,
    conditions: list[ColumnElement[bool]],
) -> list[uuid.UUID]:
    """Add every live organization the principal sees that meets ``conditions``; the ids
    added (members already there are left as they are)."""
    chosen = select(
        literal(found.id).label("list_id"),
        organizations.c.id,
        literal(principal.subject).label("added_by"),
    ).where(*conditions)
    stmt = (
        pg_insert(organization_list_members)
        .from_select(["list_id", "organization_id", "added_by"], chosen)
        .on_conflict_do_nothing()
        .returning(organization_list_members.c.organization_id)
    )
    return sorted((await session.scalars(stmt)).all())


async def _visible_ids(
    session: AsyncSession, principal: Principal, ids: list[uuid.UUID]
) -> set[uuid.UUID]:
    found = await session.scalars(
        select(organizations.c.id).where(
            organizations.c.id.in_(ids),
            organizations.c.deleted_at.is_(None),
            visible_to(principal, organizations.c.directions),
        )
    )
    return set(found)


@router.post("/{list_id}/members")
async def add_members(
    list_id: uuid.UUID,
    request: MembershipRequest,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
) -> MembershipChange:
    """Add organizations to a static list by id, or every organization a filter finds now.
    Organizations the caller may not see are never added (reported as not found)."""
    async with runtime.sessions() as session, session.begin():
        found = await visible_list(session, principal, list_id, for_update=True)
        _static(found)
        not_found: list[str] = []
        if request.organization_ids is not None:
            wanted = list(dict.fromkeys(request.organization_ids))
            seen = await _visible_ids(session, principal, wanted)
            not_found = [str(i) for i in wanted if i not in seen]
            conditions: list[ColumnElement[bool]] = (
                [organizations.c.id.in_(sorted(seen))] if seen else []
            )
            total = len(seen)
        else:
            assert request.filter is not None
            await prepare_search(session, runtime)
            conditions = await filter_conditions(session, principal, request.filter)
            total = -1
        added = await _add_where(session, principal, found, conditions) if conditions else []
        await _publish(session, runtime, principal, found, added=added, removed=[])
    unchanged = max(total - len(added), 0) if total >= 0 else 0
    return MembershipChange(added=len(added), unchanged=unchanged, not_found=not_found)


@router.post("/{list_id}/members/remove")
async def remove_members(
    list_id: uuid.UUID,
    request: MembershipRequest,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
) -> MembershipChange:
    """Remove organizations from a static list (by id; only members the caller may see)."""
    if request.organization_ids is None:
        raise invalid([{"loc": ("organization_ids",), "msg": "give the ids", "type": "missing"}])
    async with runtime.sessions() as session, session.begin():
        found = await visible_list(session, principal, list_id, for_update=True)
        _static(found)
        wanted = list(dict.fromkeys(request.organization_ids))
        seen = await _visible_ids(session, principal, wanted)
        removed = sorted(
            (
                await session.scalars(
                    delete(organization_list_members)
                    .where(
                        organization_list_members.c.list_id == list_id,
                        organization_list_members.c.organization_id.in_(sorted(seen)),
                    )
                    .returning(organization_list_members.c.organization_id)
                )
            ).all()
        )
        await _publish(session, runtime, principal, found, added=[], removed=removed)
    return MembershipChange(
        removed=len(removed),
        unchanged=len(seen) - len(removed),
        not_found=[str(i) for i in wanted if i not in seen],
    )


@router.post("/{list_id}/members/upload")
async def upload_members(
    list_id: uuid.UUID,
    file: UploadFile,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    column: Annotated[
        str | None, Form(description="the header of the column to read (default: INN or id)")
    ] = None,
) -> MembershipChange:
    """Add the organizations an .xlsx or CSV file names, by INN or by id (the first sheet; a
    header row naming the column). Rows naming no organization the caller sees are reported
    by row number; a broken file is a 422 problem and adds nothing."""
    max_rows = int(getattr(runtime.settings, "import_max_rows", MAX_UPLOAD_ROWS))
    # reading a spreadsheet is CPU work: off the event loop, which keeps serving meanwhile
    wanted, not_found = await asyncio.to_thread(_wanted_members, file, column, max_rows)
    async with runtime.sessions() as session, session.begin():
        found = await visible_list(session, principal, list_id, for_update=True)
        _static(found)
        inns = [k for k in wanted if not k.startswith("id:")]
        ids = [uuid.UUID(k[3:]) for k in wanted if k.startswith("id:")]
        matched = (
            await session.execute(
                select(organizations.c.id, organizations.c.inn).where(
                    organizations.c.deleted_at.is_(None),
                    visible_to(principal, organizations.c.directions),
                    (organizations.c.inn.in_(inns)) | (organizations.c.id.in_(ids)),
                )
            )
        ).all()
        hit_keys = {f"id:{row.id}" for row in matched} | {row.inn for row in matched if row.inn}
        for key, numbers in wanted.items():
            if key not in hit_keys:
                not_found.extend(f"row {n}" for n in numbers)
        chosen = sorted({row.id for row in matched})
        added = (
            await _add_where(session, principal, found, [organizations.c.id.in_(chosen)])
            if chosen
            else []
        )
        await _publish(session, runtime, principal, found, added=added, removed=[])
    return MembershipChange(
        added=len(added), unchanged=len(chosen) - len(added), not_found=not_found
    )


def _wanted_members(
    file: UploadFile, column: str | None, max_rows: int
) -> tuple[dict[str, list[int]], list[str]]:
    """The organizations an uploaded file names (key -> row numbers) and the rows naming none;
    a 422 problem for a file that cannot be read."""
    rows = _read_upload(file)
    try:
        header = next(rows, None)
        if header is None:
            raise TabularError("the file is empty")
        overrides = {column: "inn"} if column else None
        mapping, problems = map_headers(header, {}, overrides)
        by_field = {field: index for index, field in mapping.items()}
        if problems or not ({"inn", "id"} & set(by_field)):
            raise TabularError(
                "; ".join(problems) or "no column of INN or id (name it «ИНН», «INN» or «id»)"
            )
        wanted: dict[str, list[int]] = {}
        not_found: list[str] = []
        for number, row in enumerate(rows, start=2):
            if number > max_rows + 1:
                raise TabularError(f"more than {max_rows} rows")
            key = _member_key(row, by_field)
            if key is None:
                not_found.append(f"row {number}")
            else:
                wanted.setdefault(key, []).append(number)
    except TabularError as exc:
        raise _broken_file(str(exc)) from None
    return wanted, not_found


def _member_key(row: list[str | None], by_field: dict[str, int]) -> str | None:
    def cell(field: str) -> str | None:
        index = by_field.get(field)
        return row[index] if index is not None and index < len(row) else None

    if (raw_id := cell("id")) is not None:
        try:
            return f"id:{uuid.UUID(raw_id)}"
        except ValueError:
            return None
    if (raw_inn := cell("inn")) is not None:
        try:
            return valid_inn(raw_inn.replace(" ", ""))
        except ValueError:
            return None
    return None


def _read_upload(file: UploadFile) -> Any:
    try:
        return read_rows(file.file, file.filename)
    except TabularError as exc:
        raise _broken_file(str(exc)) from None


def _broken_file(detail: str) -> ProblemError:
    return ProblemError(
        422, "Unreadable File", f"The file cannot be read: {detail}.", kind="unreadable-file"
    )
