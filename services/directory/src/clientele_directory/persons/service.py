"""Person and employment operations: each one a unit of work (transaction, audit, outbox).

A person is visible through one of his own directions or through a live employment at a live
organization the reader sees; an employment is visible when its organization is.
"""

from __future__ import annotations

import uuid
from typing import Any

from clientele_shared.auth.access import writable_directions
from clientele_shared.auth.principal import Principal
from clientele_shared.http.concurrency import check_version
from clientele_shared.http.problems import Conflict, NotFound, ProblemError, invalid, invalid_field
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import (
    AuditEntry,
    UnitOfWork,
    Versioned,
    defer_version,
    restore,
    soft_delete,
    soft_delete_values,
    write_version,
)
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.attributes.rules import (
    EntityKind,
)
from clientele_directory.attributes.service import (
    definitions_for,
    patch_attributes,
    resolve_with,
)
from clientele_directory.mailing_facts import queries as mailing_facts_queries
from clientele_directory.mailing_facts import service as mailing_facts
from clientele_directory.organizations.rules import PatchRejected
from clientele_directory.persons import queries
from clientele_directory.persons.rules import (
    Employment,
    EmploymentDraft,
    EmploymentFields,
    EmploymentPatch,
    Person,
    PersonCard,
    PersonDraft,
    PersonFields,
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
from clientele_directory.publishing import (
    employment_changed,
    person_created,
    person_deleted,
    person_restored,
    person_updated,
)
from clientele_directory.register import service as register
from clientele_directory.tables import persons
from clientele_directory.values import STORED
from clientele_directory.work import work

KIND, EMPLOYMENT_KIND = "person", "employment"
PERSON = Versioned(persons, KIND)
_NOT_FOUND = "No such person."
_NO_EMPLOYMENT = "No such employment."


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
    person = await queries.load_person(
        session,
        principal,
        person_id,
        for_update=for_update,
        deleted=deleted,
        check_visible=check_visible,
    )
    if person is None:
        if deleted is False:
            survivor = await queries.visible_survivor(session, principal, person_id)
            if survivor is not None:
                raise MergedAway(survivor)
        raise NotFound(_NOT_FOUND)
    jobs = await queries.visible_employments(session, principal, [person_id])
    return person.model_copy(update={"employments": jobs[person_id]})


async def with_employments(
    session: AsyncSession, principal: Principal, found: list[Person]
) -> list[Person]:
    """The persons with the employments the principal sees."""
    jobs = await queries.visible_employments(session, principal, [p.id for p in found])
    return [person.model_copy(update={"employments": jobs[person.id]}) for person in found]


async def effective_directions(session: AsyncSession, person_id: uuid.UUID) -> list[str]:
    """The person's own directions and those of the organizations he works at."""
    return (await queries.effective_directions_of(session, [person_id]))[person_id]


async def live_employment_count(session: AsyncSession, person_id: uuid.UUID) -> int:
    return (await live_employment_counts(session, [person_id]))[person_id]


async def live_employment_counts(
    session: AsyncSession, person_ids: list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Each person's live employments at live organizations (whoever sees them)."""
    return await queries.live_employment_counts(session, person_ids)


async def _check_organizations(
    session: AsyncSession, principal: Principal, wanted: list[tuple[uuid.UUID, str]]
) -> None:
    """422 naming each ``(organization, field)`` whose organization does not exist, is deleted
    or is invisible to the principal."""
    found = await queries.organizations_directions(
        session, sorted({org_id for org_id, _ in wanted}), live=True
    )
    errors = [
        {"loc": (field,), "msg": "no such organization", "type": "unknown_reference"}
        for org_id, field in wanted
        if org_id not in found or not principal.can_see(found[org_id])
    ]
    if errors:
        raise invalid(errors)


async def _insert_employments(
    uow: UnitOfWork,
    principal: Principal,
    jobs: list[tuple[uuid.UUID, EmploymentDraft, str]],
) -> list[Employment]:
    """Write ``(person, employment, field)``s at organizations the principal sees (422 naming
    the field of any other) in one statement, each audited."""
    if not jobs:
        return []
    await _check_organizations(
        uow.session, principal, [(draft.organization_id, field) for _, draft, field in jobs]
    )
    written = await queries.insert_employments(
        uow.session,
        [
            {
                "id": uuid.uuid4(),
                "person_id": person_id,
                "organization_id": draft.organization_id,
                **employment_storage_values(
                    EmploymentFields.model_validate(draft.model_dump(exclude={"organization_id"}))
                ),
                "version": 1,
                "created_by": principal.subject,
                "updated_by": principal.subject,
            }
            for person_id, draft, _ in jobs
        ],
    )
    await uow.audit_many(
        kind=EMPLOYMENT_KIND,
        action="created",
        entries=[(job.id, job.version, employment_created_changes(job)) for job in written],
    )
    return written


async def _audit_employment(
    uow: UnitOfWork,
    employment: Employment,
    action: str,
    changes: dict[str, Any] | None = None,
    note: str | None = None,
) -> None:
    await uow.audit(
        kind=EMPLOYMENT_KIND,
        entity_id=employment.id,
        action=action,
        version=employment.version,
        changes=changes,
        note=note,
    )


async def rewrite_employment(
    uow: UnitOfWork,
    employment_id: uuid.UUID,
    values: dict[str, Any],
    *,
    action: str,
    changes: dict[str, Any] | None = None,
    note: str | None = None,
) -> Employment:
    """Write a new version of an employment (``values`` carry its version) and audit it."""
    employment = await queries.update_employment(uow.session, employment_id, values)
    await _audit_employment(uow, employment, action, changes, note)
    return employment


async def publish_employment(
    uow: UnitOfWork, employment: Employment, change: str, changes: dict[str, Any]
) -> None:
    """Stage ``directory.employment.changed`` (directions of the person and the organization)."""
    await publish_employments(uow, [(employment, change, changes)])


async def publish_employments(
    uow: UnitOfWork, changed: list[tuple[Employment, str, dict[str, Any]]]
) -> None:
    """:func:`publish_employment` of many employments, their directions read together."""
    if not changed:
        return
    people = await queries.effective_directions_of(
        uow.session, sorted({job.person_id for job, _, _ in changed})
    )
    orgs = await queries.organizations_directions(
        uow.session, sorted({job.organization_id for job, _, _ in changed}), live=False
    )
    uow.stage(
        *(
            employment_changed(
                uow.outbox,
                job,
                change,
                changes,
                uow.actor,
                directions=sorted({*people[job.person_id], *orgs.get(job.organization_id, [])}),
            )
            for job, change, changes in changed
        )
    )


async def create_person(
    *, runtime: ServiceRuntime, principal: Principal, draft: PersonDraft
) -> Person:
    """A new person with his own directions (403 outside the caller's) and/or employments at
    organizations the caller sees (422 for any other)."""
    writable_directions(principal, draft.directions)
    async with work(runtime, principal) as uow:
        return await insert_person(uow, principal, draft)


async def resolved_drafts(
    session: AsyncSession, principal: Principal, drafts: list[PersonDraft]
) -> list[PersonDraft | ProblemError]:
    """Each new person's draft with its attribute values as created (the definitions read
    once), or the 422 problem why it cannot be."""
    definitions = await definitions_for(session, EntityKind.PERSON)
    resolved: list[PersonDraft | ProblemError] = []
    for draft in drafts:
        try:
            values = await resolve_with(
                session, principal, definitions, {}, draft.attributes, creating=True
            )
        except ProblemError as exc:
            resolved.append(exc)
            continue
        resolved.append(draft.model_copy(update={"attributes": values}))
    return resolved


async def insert_person(uow: UnitOfWork, principal: Principal, draft: PersonDraft) -> Person:
    """Write a new person and his employments in the unit of work: audited, announced
    (``directory.person.created``, the register, the employments' events). The caller checked
    that he may write the draft's directions (create_person, the import of persons)."""
    (resolved,) = await resolved_drafts(uow.session, principal, [draft])
    if isinstance(resolved, ProblemError):
        raise resolved
    (person,) = await insert_persons(uow, principal, [resolved])
    return person


async def insert_persons(
    uow: UnitOfWork, principal: Principal, drafts: list[PersonDraft]
) -> list[Person]:
    """:func:`insert_person` of many drafts resolved by :func:`resolved_drafts`, in a handful
    of statements (one insert of the persons, one of their employments, one read back); each
    person audited and announced as one created alone."""
    if not drafts:
        return []
    fresh = [  # the drafts' fields as validated, not validated again
        Person.model_construct(
            **{name: value for name, value in draft if name != "employments"},
            id=uuid.uuid4(),
            version=1,
        )
        for draft in drafts
    ]
    await queries.insert_persons(
        uow.session,
        [
            {
                "id": person.id,
                **person_storage_values(person),
                "version": 1,
                "created_by": principal.subject,
                "updated_by": principal.subject,
            }
            for person in fresh
        ],
    )
    await uow.audit_many(
        kind=KIND,
        action="created",
        entries=[(person.id, 1, person_created_changes(person)) for person in fresh],
    )
    jobs = await _insert_employments(
        uow,
        principal,
        [
            (person.id, job, f"employments.{index}.organization_id")
            for person, draft in zip(fresh, drafts, strict=True)
            for index, job in enumerate(draft.employments)
        ],
    )
    ids = [person.id for person in fresh]
    written = await queries.persons_by_id(uow.session, ids)
    seen = await queries.visible_employments(uow.session, principal, ids)
    directions = await queries.effective_directions_of(uow.session, ids)
    people = [written[pid].model_copy(update={"employments": seen[pid]}) for pid in ids]
    for person in people:
        uow.stage(person_created(uow.outbox, person, uow.actor, directions=directions[person.id]))
        if person.blocked:
            await register.announce_person(
                uow, person.id, 1, directions[person.id], was_blocked=False
            )
    await publish_employments(
        uow, [(job, "created", employment_created_changes(job)) for job in jobs]
    )
    return people


async def get_person(
    *, runtime: ServiceRuntime, principal: Principal, person_id: uuid.UUID, include_deleted: bool
) -> PersonCard:
    """The person with campaigns' facts about him (consent per channel, addresses to review)."""
    async with runtime.sessions() as session:
        person = await visible_person(
            session, principal, person_id, deleted=None if include_deleted else False
        )
        facts = await mailing_facts.facts_of(session, person_id, person.emails)
    return PersonCard.model_validate({**dict(person), **dict(facts)}, context=STORED)


async def clear_address_review(
    *, runtime: ServiceRuntime, principal: Principal, person_id: uuid.UUID, email: str
) -> None:
    """The caller reviewed an address a mailing bounced on: the mark goes (audited); 404 when
    the caller does not see the person or the address carries no mark."""
    async with work(runtime, principal) as uow:
        person = await visible_person(uow.session, principal, person_id, for_update=True)
        cleared = await mailing_facts_queries.clear_review(uow.session, person_id, email)
        if cleared is None:
            raise NotFound("No such address to review.")
        await uow.audit(
            kind=KIND,
            entity_id=person_id,
            action="address_review_cleared",
            version=person.version,
            changes={"address_for_review": {"old": cleared, "new": None}},
        )


async def list_persons(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    organization_id: uuid.UUID | None,
    deleted: bool,
    limit: int,
) -> list[Person]:
    async with runtime.sessions() as session:
        found = await queries.list_visible(
            session, principal, organization_id=organization_id, deleted=deleted, limit=limit
        )
        return await with_employments(session, principal, found)


async def update_person(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    person_id: uuid.UUID,
    patch: PersonPatch,
    expected: set[int],
) -> Person:
    """JSON merge patch of the person's own fields; a patch that changes nothing writes none."""
    async with work(runtime, principal) as uow:
        current = await visible_person(uow.session, principal, person_id, for_update=True)
        check_version(expected, current.version)
        return await patch_person(uow, principal, current, patch)


async def patch_person(
    uow: UnitOfWork, principal: Principal, current: Person, patch: PersonPatch
) -> Person:
    """Apply a merge patch to ``current`` (read for update by the caller) in the unit of work:
    checked, audited and announced as update_person's; unchanged when it changes nothing."""
    count = await live_employment_count(uow.session, current.id)
    patched, changes = await checked_patch(uow.session, principal, current, patch, count)
    if not changes:
        return current
    (person,) = await write_patches(uow, principal, [(current, patched, changes)])
    return person


async def checked_patch(
    session: AsyncSession,
    principal: Principal,
    current: Person,
    patch: PersonPatch,
    live_employments: int,
) -> tuple[PersonFields, dict[str, Any]]:
    """``current`` after a merge patch and the changes (none: nothing to write), checked as
    update_person checks it (422 for a bad value or a person left without a direction and
    employment, 403 for a move out of or into a direction the principal may not write)."""
    try:
        patched = apply_person_patch(current, patch)
    except PatchRejected as exc:
        raise invalid(exc.errors) from None
    patched = await patch_attributes(
        session, principal, EntityKind.PERSON, current.attributes, patch, patched
    )
    changes = person_changes(current, patched)
    if not changes:
        return patched, changes
    writable_directions(principal, set(current.directions) ^ set(patched.directions))
    if not keeps_person_visible(patched.directions, live_employments):
        raise invalid_field(
            "directions", "a person without employments needs a direction", "orphan"
        )
    return patched, changes


async def write_patches(
    uow: UnitOfWork,
    principal: Principal,
    patches: list[tuple[Person, PersonFields, dict[str, Any]]],
) -> list[Person]:
    """Write ``(current, patched, changes)``s of :func:`checked_patch` (one per person, each
    read for update by the caller) in the unit of work, the persons read back together: each
    audited and announced as update_person's. A deferring unit of work (``defer_at``) sends
    the updates in one round trip."""
    if not patches:
        return []
    ids = [current.id for current, _, _ in patches]
    previous = await queries.effective_directions_of(uow.session, ids)
    write = defer_version if uow.deferring else write_version
    for current, patched, changes in patches:
        await write(
            uow,
            PERSON,
            current.id,
            current=current.version,
            expected={current.version},
            values=person_storage_values(patched),
            action="updated",
            changes=changes,
        )
    await uow.flush_versions()
    written = await queries.persons_by_id(uow.session, ids)
    seen = await queries.visible_employments(uow.session, principal, ids)
    now = await queries.effective_directions_of(uow.session, ids)
    people = []
    for current, _, changes in patches:
        person = written[current.id].model_copy(update={"employments": seen[current.id]})
        directions = sorted({*previous[current.id], *now[current.id]})
        uow.stage(person_updated(uow.outbox, person, changes, uow.actor, directions=directions))
        if person.blocked != current.blocked:
            await register.announce_person(
                uow, person.id, person.version, directions, was_blocked=current.blocked
            )
        people.append(person)
    return people


async def set_deleted(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    person_id: uuid.UUID,
    expected: set[int],
    delete: bool,
) -> Person:
    """Soft-delete a person (restorable) or, with ``delete=False``, bring him back."""
    async with work(runtime, principal) as uow:
        current = await visible_person(
            uow.session, principal, person_id, for_update=True, deleted=False if delete else None
        )
        if delete:
            await soft_delete(uow, PERSON, current, expected, writer=principal)
        else:
            await restore(uow, PERSON, current, expected, what="person", writer=principal)
        person = await visible_person(uow.session, principal, person_id, deleted=None)
        directions = await effective_directions(uow.session, person_id)
        build = person_deleted if delete else person_restored
        uow.stage(build(uow.outbox, person, uow.actor, directions=directions))
    return person


async def person_audit(
    *, runtime: ServiceRuntime, principal: Principal, person_id: uuid.UUID, after: int, limit: int
) -> list[AuditEntry]:
    """The person's changes and those of the employments the caller may see."""
    async with runtime.sessions() as session:
        await visible_person(session, principal, person_id, deleted=None)
        return await queries.person_audit(
            session, principal, person_id, kinds=(KIND, EMPLOYMENT_KIND), after=after, limit=limit
        )


async def _visible_employment(
    session: AsyncSession, principal: Principal, person_id: uuid.UUID, employment_id: uuid.UUID
) -> Employment:
    employment = await queries.visible_employment(session, principal, person_id, employment_id)
    if employment is None:
        raise NotFound(_NO_EMPLOYMENT)
    return employment


async def add_employment(
    *, runtime: ServiceRuntime, principal: Principal, person_id: uuid.UUID, draft: EmploymentDraft
) -> Employment:
    """The person works at an organization the caller sees (422 for any other)."""
    async with work(runtime, principal) as uow:
        await visible_person(uow.session, principal, person_id, for_update=True)
        return await employ(uow, principal, person_id, draft)


async def employ(
    uow: UnitOfWork, principal: Principal, person_id: uuid.UUID, draft: EmploymentDraft
) -> Employment:
    """Write an employment of the person (read for update by the caller) at an organization
    the principal sees (422 for any other) in the unit of work: audited and announced."""
    (employment,) = await employ_many(uow, principal, [(person_id, draft)])
    return employment


async def employ_many(
    uow: UnitOfWork, principal: Principal, jobs: list[tuple[uuid.UUID, EmploymentDraft]]
) -> list[Employment]:
    """:func:`employ` of many ``(person, employment)``s in a handful of statements."""
    written = await _insert_employments(
        uow, principal, [(person_id, draft, "organization_id") for person_id, draft in jobs]
    )
    await publish_employments(
        uow, [(job, "created", employment_created_changes(job)) for job in written]
    )
    return written


async def update_employment(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    person_id: uuid.UUID,
    employment_id: uuid.UUID,
    patch: EmploymentPatch,
    expected: set[int],
) -> Employment:
    """JSON merge patch of an employment (its own version)."""
    async with work(runtime, principal) as uow:
        await visible_person(uow.session, principal, person_id, for_update=True)
        current = await _visible_employment(uow.session, principal, person_id, employment_id)
        check_version(expected, current.version)
        try:
            patched = apply_employment_patch(current, patch)
        except PatchRejected as exc:
            raise invalid(exc.errors) from None
        changes = employment_changes(current, patched)
        if not changes:
            return current
        employment = await rewrite_employment(
            uow,
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
        await publish_employment(uow, employment, "updated", changes)
    return employment


async def delete_employment(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    person_id: uuid.UUID,
    employment_id: uuid.UUID,
    expected: set[int],
) -> int:
    """Remove an employment (kept for the audit); a person without directions keeps at least
    one employment (409). Answers the employment's new version."""
    async with work(runtime, principal) as uow:
        person = await visible_person(uow.session, principal, person_id, for_update=True)
        current = await _visible_employment(uow.session, principal, person_id, employment_id)
        check_version(expected, current.version)
        remaining = await live_employment_count(uow.session, person_id) - 1
        if not keeps_person_visible(person.directions, remaining):
            raise Conflict(
                "This is the person's last employment and he has no direction of his own; "
                "give him a direction first."
            )
        employment = await rewrite_employment(
            uow,
            employment_id,
            {
                "version": current.version + 1,
                "updated_by": principal.subject,
                "updated_at": func.now(),
                **soft_delete_values(principal.subject),
            },
            action="deleted",
        )
        await publish_employment(uow, employment, "deleted", {})
    return employment.version
