"""Persons and their employments.

A person is visible through one of his own directions or through a live employment at a live
organization the reader sees; an employment is visible when its organization is.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from clientele_shared.auth.access import visible_to, writable_directions
from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.auth.principal import Principal
from clientele_shared.http.concurrency import IfMatch, check_version, etag, required_versions
from clientele_shared.http.params import EntryCursor
from clientele_shared.http.problems import Conflict, NotFound, ProblemError, invalid, invalid_field
from clientele_shared.runtime import CurrentRuntime
from clientele_shared.service_layer import AuditEntry, actor_of
from fastapi import APIRouter, Query, Response, status
from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    and_,
    exists,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.api.attributes import resolve_attributes
from clientele_directory.api.blocking import announce_person, person_blocked_expr
from clientele_directory.api.common import audit, legacy_work, soft_delete_values
from clientele_directory.domain.attributes import EntityKind
from clientele_directory.domain.persons import (
    Employment,
    EmploymentDraft,
    EmploymentFields,
    EmploymentPatch,
    Person,
    PersonDraft,
    PersonPatch,
    apply_employment_patch,
    apply_person_patch,
    employment_changes,
    employment_created_changes,
    employment_storage_values,
    keeps_person_visible,
    person_changes,
    person_created_changes,
    person_storage_values,
)
from clientele_directory.organizations.rules import PatchRejected
from clientele_directory.publishing import (
    employment_changed,
    person_created,
    person_deleted,
    person_restored,
    person_updated,
)
from clientele_directory.tables import audit_log, employments, organizations, persons
from clientele_directory.values import STORED

router = APIRouter(prefix="/v1/persons", tags=["persons"])
KIND, EMPLOYMENT_KIND = "person", "employment"
_NOT_FOUND = "No such person."
_NO_EMPLOYMENT = "No such employment."

_live_employment_at_live_org = and_(
    employments.c.deleted_at.is_(None),
    organizations.c.deleted_at.is_(None),
)
_employment_orgs = employments.join(
    organizations, organizations.c.id == employments.c.organization_id
)


def person_visible(principal: Principal, person: FromClause = persons) -> ColumnElement[bool]:
    """SQL: the person row (of ``persons`` or an alias of it) is visible to the principal."""
    if principal.sees_all_directions:
        return true()
    through_employment = exists(
        select(1)
        .select_from(_employment_orgs)
        .where(
            employments.c.person_id == person.c.id,
            _live_employment_at_live_org,
            visible_to(principal, organizations.c.directions),
        )
    )
    return or_(visible_to(principal, person.c.directions), through_employment)


def merged_into_visible(principal: Principal) -> ColumnElement[bool]:
    """SQL: the person row was merged into a live person the principal sees (a merged person is
    seen through its survivor: its employments went there)."""
    survivor = persons.alias("survivor")
    return and_(
        persons.c.merged_into.is_not(None),
        exists(
            select(1)
            .select_from(survivor)
            .where(
                survivor.c.id == persons.c.merged_into,
                survivor.c.deleted_at.is_(None),
                person_visible(principal, survivor),
            )
        ),
    )


class MergedAway(ProblemError):
    """404 for a person merged into another the caller sees: the answer names the survivor."""

    def __init__(self, survivor_id: uuid.UUID) -> None:
        super().__init__(
            404,
            "Not Found",
            "The person was merged into another; read that one.",
            kind="not-found",
            merged_into=str(survivor_id),
        )


def person_select() -> Select[Any]:
    return select(persons, person_blocked_expr().label("blocked"))


async def _visible_employments(
    session: AsyncSession, principal: Principal, person_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[Employment]]:
    rows = (
        await session.execute(
            select(employments)
            .select_from(_employment_orgs)
            .where(
                employments.c.person_id.in_(person_ids),
                _live_employment_at_live_org,
                visible_to(principal, organizations.c.directions),
            )
            .order_by(employments.c.created_at, employments.c.id)
        )
    ).all()
    found: dict[uuid.UUID, list[Employment]] = {pid: [] for pid in person_ids}
    for row in rows:
        found[row.person_id].append(
            Employment.model_validate(row, from_attributes=True, context=STORED)
        )
    return found


async def visible_person(
    session: AsyncSession,
    principal: Principal,
    person_id: uuid.UUID,
    *,
    for_update: bool = False,
    deleted: bool | None = False,
    check_visible: bool = True,
) -> Person:
    """The person with the employments the principal sees; 404 if he may not see the person.

    ``deleted``: False for live persons only, True for deleted ones only, None for either; a
    merged person is also seen by whoever sees its survivor, and a live read of it is a 404
    naming the survivor (``merged_into``). ``check_visible=False`` reads the person the
    principal has just changed, which his change may have moved out of his sight.
    """
    seen = person_visible(principal)
    if deleted is not False:
        seen = or_(seen, merged_into_visible(principal))
    stmt = person_select().where(persons.c.id == person_id, seen if check_visible else true())
    if deleted is not None:
        stmt = stmt.where(
            persons.c.deleted_at.is_not(None) if deleted else persons.c.deleted_at.is_(None)
        )
    if for_update:
        stmt = stmt.with_for_update(of=persons)
    row = (await session.execute(stmt)).first()
    if row is None:
        if deleted is False:
            survivor = await session.scalar(
                select(persons.c.merged_into).where(
                    persons.c.id == person_id, merged_into_visible(principal)
                )
            )
            if survivor is not None:
                raise MergedAway(survivor)
        raise NotFound(_NOT_FOUND)
    person = Person.model_validate(row, from_attributes=True, context=STORED)
    jobs = await _visible_employments(session, principal, [person_id])
    return person.model_copy(update={"employments": jobs[person_id]})


async def effective_directions(session: AsyncSession, person_id: uuid.UUID) -> list[str]:
    """The person's own directions and those of the organizations he works at."""
    own = await session.scalar(select(persons.c.directions).where(persons.c.id == person_id))
    through = (
        await session.scalars(
            select(organizations.c.directions)
            .select_from(_employment_orgs)
            .where(employments.c.person_id == person_id, _live_employment_at_live_org)
        )
    ).all()
    return sorted({*(own or []), *(d for directions in through for d in directions)})


async def live_employment_count(session: AsyncSession, person_id: uuid.UUID) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(_employment_orgs)
        .where(employments.c.person_id == person_id, _live_employment_at_live_org)
    )
    return int(count or 0)


async def _check_organization(
    session: AsyncSession, principal: Principal, org_id: uuid.UUID, field: str
) -> None:
    """422 when the organization does not exist, is deleted or is invisible to the principal."""
    directions = await session.scalar(
        select(organizations.c.directions).where(
            organizations.c.id == org_id, organizations.c.deleted_at.is_(None)
        )
    )
    if directions is None or not principal.can_see(directions):
        raise invalid_field(field, "no such organization", "unknown_reference")


async def _insert_employment(
    session: AsyncSession,
    runtime: CurrentRuntime,
    principal: Principal,
    person_id: uuid.UUID,
    draft: EmploymentDraft,
    field: str,
) -> Employment:
    await _check_organization(session, principal, draft.organization_id, field)
    employment_id = uuid.uuid4()
    fields = EmploymentFields.model_validate(draft.model_dump(exclude={"organization_id"}))
    row = (
        await session.execute(
            insert(employments)
            .values(
                id=employment_id,
                person_id=person_id,
                organization_id=draft.organization_id,
                **employment_storage_values(fields),
                version=1,
                created_by=principal.subject,
                updated_by=principal.subject,
            )
            .returning(employments)
        )
    ).one()
    employment = Employment.model_validate(row, from_attributes=True, context=STORED)
    await _audit_employment(
        session, principal, employment, "created", employment_created_changes(employment)
    )
    return employment


async def _audit_employment(
    session: AsyncSession,
    principal: Principal,
    employment: Employment,
    action: str,
    changes: dict[str, Any] | None = None,
    note: str | None = None,
) -> None:
    await audit(
        session,
        principal,
        kind=EMPLOYMENT_KIND,
        entity_id=employment.id,
        action=action,
        version=employment.version,
        changes=changes,
        note=note,
    )


async def rewrite_employment(
    session: AsyncSession,
    principal: Principal,
    employment_id: uuid.UUID,
    values: dict[str, Any],
    *,
    action: str,
    changes: dict[str, Any] | None = None,
    note: str | None = None,
) -> Employment:
    """Write a new version of an employment (``values`` carry its version) and audit it."""
    row = (
        await session.execute(
            update(employments)
            .where(employments.c.id == employment_id)
            .values(**values)
            .returning(employments)
        )
    ).one()
    employment = Employment.model_validate(row, from_attributes=True, context=STORED)
    await _audit_employment(session, principal, employment, action, changes, note)
    return employment


async def publish_employment(
    session: AsyncSession,
    runtime: CurrentRuntime,
    principal: Principal,
    employment: Employment,
    change: str,
    changes: dict[str, Any],
) -> None:
    """Stage ``directory.employment.changed`` (directions of the person and the organization)."""
    directions = await effective_directions(session, employment.person_id)
    org_directions = await session.scalar(
        select(organizations.c.directions).where(organizations.c.id == employment.organization_id)
    )
    await runtime.outbox.add(
        session,
        employment_changed(
            runtime.outbox,
            employment,
            change,
            changes,
            actor_of(principal),
            directions=sorted({*directions, *(org_directions or [])}),
        ),
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_person(
    draft: PersonDraft, principal: CurrentPrincipal, runtime: CurrentRuntime, response: Response
) -> Person:
    """A new person with his own directions (403 outside the caller's) and/or employments at
    organizations the caller sees (422 for any other)."""
    writable_directions(principal, draft.directions)
    person_id = uuid.uuid4()
    async with runtime.sessions() as session, session.begin():
        attributes = await resolve_attributes(
            session, principal, EntityKind.PERSON, {}, draft.attributes, creating=True
        )
        draft = draft.model_copy(update={"attributes": attributes})
        await session.execute(
            insert(persons).values(
                id=person_id,
                **person_storage_values(draft.fields()),
                version=1,
                created_by=principal.subject,
                updated_by=principal.subject,
            )
        )
        fresh = Person(**draft.fields().model_dump(), id=person_id, version=1)
        await audit(
            session,
            principal,
            kind=KIND,
            entity_id=person_id,
            action="created",
            version=1,
            changes=person_created_changes(fresh),
        )
        jobs = [
            await _insert_employment(
                session, runtime, principal, person_id, job, f"employments.{index}.organization_id"
            )
            for index, job in enumerate(draft.employments)
        ]
        person = await visible_person(session, principal, person_id)
        directions = await effective_directions(session, person_id)
        await runtime.outbox.add(
            session,
            person_created(runtime.outbox, person, actor_of(principal), directions=directions),
        )
        async with legacy_work(session, runtime, principal) as uow:
            await announce_person(uow, person_id, 1, directions, was_blocked=False)
        for job in jobs:
            await publish_employment(
                session, runtime, principal, job, "created", employment_created_changes(job)
            )
    response.headers["ETag"] = etag(person.version)
    response.headers["Location"] = f"/v1/persons/{person_id}"
    return person


@router.get("/{person_id}")
async def get_person(
    person_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    include_deleted: Annotated[bool, Query(description="also answer for a deleted one")] = False,
) -> Person:
    """One person with the employments the caller may see; 404 if the caller may not see him."""
    async with runtime.sessions() as session:
        person = await visible_person(
            session, principal, person_id, deleted=None if include_deleted else False
        )
    response.headers["ETag"] = etag(person.version)
    return person


@router.get("")
async def list_persons(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    organization_id: Annotated[
        uuid.UUID | None, Query(description="only the people working at this organization")
    ] = None,
    deleted: Annotated[bool, Query(description="list the deleted ones instead")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[Person]:
    """Persons the caller may see, by name."""
    stmt = (
        person_select()
        .where(
            person_visible(principal),
            persons.c.deleted_at.is_not(None) if deleted else persons.c.deleted_at.is_(None),
        )
        .order_by(persons.c.last_name, persons.c.first_name, persons.c.id)
        .limit(limit)
    )
    if organization_id is not None:
        stmt = stmt.where(
            exists(
                select(1)
                .select_from(_employment_orgs)
                .where(
                    employments.c.person_id == persons.c.id,
                    employments.c.organization_id == organization_id,
                    _live_employment_at_live_org,
                    visible_to(principal, organizations.c.directions),
                )
            )
        )
    async with runtime.sessions() as session:
        rows = (await session.execute(stmt)).all()
        found = [Person.model_validate(row, from_attributes=True, context=STORED) for row in rows]
        jobs = await _visible_employments(session, principal, [p.id for p in found])
    return [person.model_copy(update={"employments": jobs[person.id]}) for person in found]


@router.patch("/{person_id}")
async def update_person(
    person_id: uuid.UUID,
    patch: PersonPatch,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Person:
    """JSON merge patch of the person's own fields; If-Match required (428/412)."""
    wanted = required_versions(if_match)
    async with runtime.sessions() as session, session.begin():
        current = await visible_person(session, principal, person_id, for_update=True)
        check_version(wanted, current.version)
        try:
            patched = apply_person_patch(current, patch)
        except PatchRejected as exc:
            raise invalid(exc.errors) from None
        if "attributes" in patch.model_fields_set:
            attributes = await resolve_attributes(
                session,
                principal,
                EntityKind.PERSON,
                current.attributes,
                patch.attributes,
                creating=False,
            )
            patched = patched.model_copy(update={"attributes": attributes})
        changes = person_changes(current, patched)
        if not changes:
            response.headers["ETag"] = etag(current.version)
            return current
        old_directions = set(current.directions)
        writable_directions(principal, old_directions ^ set(patched.directions))
        if not keeps_person_visible(
            patched.directions, await live_employment_count(session, person_id)
        ):
            raise invalid_field(
                "directions", "a person without employments needs a direction", "orphan"
            )
        previous = await effective_directions(session, person_id)
        version = current.version + 1
        await session.execute(
            update(persons)
            .where(persons.c.id == person_id)
            .values(
                **person_storage_values(patched),
                version=version,
                updated_by=principal.subject,
                updated_at=func.now(),
            )
        )
        person = await visible_person(
            session, principal, person_id, deleted=None, check_visible=False
        )
        await audit(
            session,
            principal,
            kind=KIND,
            entity_id=person_id,
            action="updated",
            version=version,
            changes=changes,
        )
        directions = sorted({*previous, *await effective_directions(session, person_id)})
        await runtime.outbox.add(
            session,
            person_updated(
                runtime.outbox, person, changes, actor_of(principal), directions=directions
            ),
        )
        async with legacy_work(session, runtime, principal) as uow:
            await announce_person(
                uow,
                person_id,
                version,
                directions,
                was_blocked=current.blocked,
            )
    response.headers["ETag"] = etag(person.version)
    return person


async def _set_deleted(
    runtime: CurrentRuntime,
    principal: Principal,
    person_id: uuid.UUID,
    if_match: str | None,
    *,
    delete: bool,
) -> Person:
    wanted = required_versions(if_match)
    async with runtime.sessions() as session, session.begin():
        current = await visible_person(
            session, principal, person_id, for_update=True, deleted=False if delete else None
        )
        if not delete and current.deleted_at is None:
            raise Conflict("The person is not deleted.")
        if current.merged_into is not None:
            raise Conflict(
                "The person was merged into another; he cannot be restored.",
                merged_into=str(current.merged_into),
            )
        check_version(wanted, current.version)
        writable_directions(principal, current.directions)
        version = current.version + 1
        await session.execute(
            update(persons)
            .where(persons.c.id == person_id)
            .values(**soft_delete_values(principal, version, delete=delete))
        )
        person = await visible_person(session, principal, person_id, deleted=None)
        await audit(
            session,
            principal,
            kind=KIND,
            entity_id=person_id,
            action="deleted" if delete else "restored",
            version=version,
        )
        directions = await effective_directions(session, person_id)
        build = person_deleted if delete else person_restored
        await runtime.outbox.add(
            session, build(runtime.outbox, person, actor_of(principal), directions=directions)
        )
    return person


@router.delete("/{person_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_person(
    person_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> None:
    """Soft-delete a person (restorable); If-Match required."""
    person = await _set_deleted(runtime, principal, person_id, if_match, delete=True)
    response.headers["ETag"] = etag(person.version)


@router.post("/{person_id}/restore")
async def restore_person(
    person_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Person:
    """Bring a deleted person back; If-Match with the deleted version's ETag."""
    person = await _set_deleted(runtime, principal, person_id, if_match, delete=False)
    response.headers["ETag"] = etag(person.version)
    return person


@router.get("/{person_id}/audit")
async def person_audit(
    person_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    after: EntryCursor = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditEntry]:
    """The person's changes and those of the employments the caller may see."""
    async with runtime.sessions() as session:
        await visible_person(session, principal, person_id, deleted=None)
        visible_jobs = (
            select(employments.c.id)
            .select_from(_employment_orgs)
            .where(
                employments.c.person_id == person_id,
                visible_to(principal, organizations.c.directions),
            )
        )
        rows = (
            await session.execute(
                select(audit_log)
                .where(
                    or_(
                        and_(audit_log.c.entity_kind == KIND, audit_log.c.entity_id == person_id),
                        and_(
                            audit_log.c.entity_kind == EMPLOYMENT_KIND,
                            audit_log.c.entity_id.in_(visible_jobs),
                        ),
                    ),
                    audit_log.c.id > after,
                )
                .order_by(audit_log.c.id)
                .limit(limit)
            )
        ).all()
    return [AuditEntry.model_validate(row, from_attributes=True) for row in rows]


# --- employments -----------------------------------------------------------------------------


async def _visible_employment(
    session: AsyncSession, principal: Principal, person_id: uuid.UUID, employment_id: uuid.UUID
) -> Employment:
    row = (
        await session.execute(
            select(employments)
            .select_from(_employment_orgs)
            .where(
                employments.c.id == employment_id,
                employments.c.person_id == person_id,
                _live_employment_at_live_org,
                visible_to(principal, organizations.c.directions),
            )
            .with_for_update(of=employments)
        )
    ).first()
    if row is None:
        raise NotFound(_NO_EMPLOYMENT)
    return Employment.model_validate(row, from_attributes=True, context=STORED)


@router.post("/{person_id}/employments", status_code=status.HTTP_201_CREATED)
async def add_employment(
    person_id: uuid.UUID,
    draft: EmploymentDraft,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
) -> Employment:
    """The person works at an organization the caller sees (422 for any other)."""
    async with runtime.sessions() as session, session.begin():
        await visible_person(session, principal, person_id, for_update=True)
        employment = await _insert_employment(
            session, runtime, principal, person_id, draft, "organization_id"
        )
        await publish_employment(
            session,
            runtime,
            principal,
            employment,
            "created",
            employment_created_changes(employment),
        )
    response.headers["ETag"] = etag(employment.version)
    response.headers["Location"] = f"/v1/persons/{person_id}/employments/{employment.id}"
    return employment


@router.patch("/{person_id}/employments/{employment_id}")
async def update_employment(
    person_id: uuid.UUID,
    employment_id: uuid.UUID,
    patch: EmploymentPatch,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Employment:
    """JSON merge patch of an employment; If-Match with the employment's ETag."""
    wanted = required_versions(if_match)
    async with runtime.sessions() as session, session.begin():
        await visible_person(session, principal, person_id, for_update=True)
        current = await _visible_employment(session, principal, person_id, employment_id)
        check_version(wanted, current.version)
        try:
            patched = apply_employment_patch(current, patch)
        except PatchRejected as exc:
            raise invalid(exc.errors) from None
        changes = employment_changes(current, patched)
        if not changes:
            response.headers["ETag"] = etag(current.version)
            return current
        employment = await rewrite_employment(
            session,
            principal,
            employment_id,
            {
                **employment_storage_values(patched),
                "version": current.version + 1,
                "updated_by": principal.subject,
                "updated_at": func.now(),
            },
            action="updated",
            changes=changes,
        )
        await publish_employment(session, runtime, principal, employment, "updated", changes)
    response.headers["ETag"] = etag(employment.version)
    return employment


@router.delete("/{person_id}/employments/{employment_id}", status_code=204)
async def delete_employment(
    person_id: uuid.UUID,
    employment_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> None:
    """Remove an employment (kept for the audit); a person without directions keeps at least
    one employment (409)."""
    wanted = required_versions(if_match)
    async with runtime.sessions() as session, session.begin():
        person = await visible_person(session, principal, person_id, for_update=True)
        current = await _visible_employment(session, principal, person_id, employment_id)
        check_version(wanted, current.version)
        remaining = await live_employment_count(session, person_id) - 1
        if not keeps_person_visible(person.directions, remaining):
            raise Conflict(
                "This is the person's last employment and he has no direction of his own; "
                "give him a direction first."
            )
        version = current.version + 1
        employment = await rewrite_employment(
            session,
            principal,
            employment_id,
            soft_delete_values(principal, version),
            action="deleted",
        )
        await publish_employment(session, runtime, principal, employment, "deleted", {})
    response.headers["ETag"] = etag(version)
