"""Merging two organizations or two persons: the survivor keeps the chosen values and takes the
other's employments, list memberships, register entries and the attribute references to it; the
other is soft-deleted pointing to it. Both kinds share the opening (both records locked in one
order, versions and directions checked, values chosen), moving register entries and references,
and marking the other merged with the audit of both. Also the duplicate candidates of a record.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar

from clientele_shared.auth.access import writable_directions
from clientele_shared.auth.principal import Principal
from clientele_shared.events.schemas.directory import MovedEmployment
from clientele_shared.http.concurrency import check_version
from clientele_shared.http.problems import Conflict, NotFound, invalid
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import Deletable, UnitOfWork, soft_delete_values
from sqlalchemy import func

from clientele_directory.attributes.rules import EntityKind
from clientele_directory.attributes.service import definitions_for, resolve_attributes
from clientele_directory.imports.queries import NAME_SIMILARITY
from clientele_directory.mailing_facts import service as mailing_facts
from clientele_directory.merging import queries
from clientele_directory.merging.rules import retargeted
from clientele_directory.merging.schemas import MergeRequest, MergeResult, PersonMergeResult
from clientele_directory.organizations.rules import (
    Organization,
    OrganizationDuplicate,
    OrganizationFields,
    PatchRejected,
    changes_between,
    merge_fields,
    moved_directions,
    organization_duplicate,
    storage_values,
)
from clientele_directory.organizations.service import load_organization, visible_organization
from clientele_directory.persons.rules import (
    DuplicateCandidate,
    Employment,
    Person,
    PersonFields,
    duplicate_candidate,
    employment_changes,
    employment_storage_values,
    folded_employment,
    keeps_person_visible,
    merge_person_fields,
    person_changes,
    person_storage_values,
    same_employment,
)
from clientele_directory.persons.service import (
    EMPLOYMENT_KIND,
    effective_directions,
    live_employment_count,
    publish_employment,
    rewrite_employment,
    visible_person,
    with_employments,
)
from clientele_directory.publishing import (
    organization_deleted,
    organization_merged,
    organization_updated,
    person_deleted,
    person_merged,
    person_updated,
)
from clientele_directory.register import service as register
from clientele_directory.tables import employments
from clientele_directory.values import STORED
from clientele_directory.work import work

ENTRY_KIND = "unwanted_entry"
NAME_SCAN = 50
"""The most similar names a candidate search takes (among the records the caller sees)."""


class Mergeable(Deletable, Protocol):
    @property
    def merged_into(self) -> uuid.UUID | None: ...
    @property
    def directions(self) -> list[str]: ...


R = TypeVar("R", bound=Mergeable)
F = TypeVar("F", OrganizationFields, PersonFields)


async def lock_pair(
    survivor_id: uuid.UUID,
    other_id: uuid.UUID,
    load: Callable[[uuid.UUID], Awaitable[R]],
    *,
    noun: str,
    not_found: str,
) -> tuple[R, R]:
    """Both records, locked in id order (two merges of the same pair never deadlock).

    ``load`` reads one record for update, deleted ones too, and answers 404 for a record the
    caller may not see. Merging a record into itself, or a record already merged, is a 409; a
    deleted record is a 404 like a missing one.
    """
    if survivor_id == other_id:
        raise Conflict(f"A {noun} cannot be merged into itself.")
    first, second = sorted((survivor_id, other_id))
    locked = {first: await load(first), second: await load(second)}
    for record in locked.values():
        if record.merged_into is not None:
            raise Conflict(
                f"The {noun} {record.id} was already merged into another.",
                merged_into=str(record.merged_into),
            )
        if record.deleted_at is not None:
            raise NotFound(not_found)
    return locked[survivor_id], locked[other_id]


def check_versions(wanted: set[int], survivor: Mergeable, other: Mergeable, version: int) -> None:
    """412 when If-Match misses the survivor's version, 409 when the other changed since read."""
    check_version(wanted, survivor.version)
    if other.version != version:
        raise Conflict(
            "The other record was changed since you read it; read it again.",
            current_version=other.version,
        )


async def merge_pair(
    uow: UnitOfWork,
    principal: Principal,
    survivor_id: uuid.UUID,
    request: MergeRequest,
    wanted: set[int],
    load: Callable[[uuid.UUID], Awaitable[R]],
    merge: Callable[[R, R, Iterable[str], Mapping[str, Any]], tuple[F, dict[str, Any]]],
    *,
    kind: EntityKind,
    noun: str,
    not_found: str,
) -> tuple[R, R, F]:
    """The opening of every merge: both records locked and checked (versions 412/409, the
    caller's directions 403), and the survivor's fields with the chosen values (422)."""
    survivor: R
    other: R
    survivor, other = await lock_pair(
        survivor_id, request.other_id, load, noun=noun, not_found=not_found
    )
    check_versions(wanted, survivor, other, request.other_version)
    writable_directions(principal, {*survivor.directions, *other.directions})
    try:
        fields, patch = merge(survivor, other, request.take, request.values)
    except PatchRejected as exc:
        raise invalid(exc.errors) from None
    values = dict(fields.attributes)
    if patch:
        values = await resolve_attributes(
            uow.session, principal, kind, values, patch, creating=False
        )
    definitions = await definitions_for(uow.session, kind)
    keys = {key for key, found in definitions.items() if found.reference_kind is kind}
    attributes = retargeted(values, keys, str(other.id), str(survivor_id))
    return survivor, other, fields.model_copy(update={"attributes": attributes})


async def move_register_entries(
    uow: UnitOfWork, column: str, survivor_id: uuid.UUID, other_id: uuid.UUID
) -> int:
    """Give the survivor the other's register entries (history too), so a block is never lost.

    A record has at most one active entry: when both have one, the survivor's stays and the
    other's is closed (removed, saying why) before it moves. Each entry's own trail says so.
    """
    reason = f"merged into {survivor_id}, which has its own active entry"
    closed = await queries.close_register_entries(
        uow.session,
        column,
        survivor_id=survivor_id,
        other_id=other_id,
        subject=uow.actor.subject,
        reason=reason,
    )
    moved = await queries.move_register_entries(
        uow.session, column, survivor_id=survivor_id, other_id=other_id
    )
    for entry_id in closed:
        await uow.audit(
            kind=ENTRY_KIND,
            entity_id=entry_id,
            action="removed",
            version=None,
            changes={"removed": {"old": False, "new": True}},
            note=reason,
        )
    for entry_id in moved:
        await uow.audit(
            kind=ENTRY_KIND,
            entity_id=entry_id,
            action="moved",
            version=None,
            changes={column: {"old": str(other_id), "new": str(survivor_id)}},
            note=f"merged into {survivor_id}",
        )
    return len(moved)


async def retarget_references(
    uow: UnitOfWork,
    principal: Principal,
    kind: EntityKind,
    survivor_id: uuid.UUID,
    other_id: uuid.UUID,
) -> int:
    """Point every custom attribute that refers to the other at the survivor, on organizations
    and persons alike (deleted ones too); each changed record gets a version, an audit entry
    and an ``updated`` event. The two merged records are left to the merge itself."""
    count = 0
    for holder_kind, key in await queries.reference_definitions(uow.session, kind):
        holder = EntityKind(holder_kind)
        rows = await queries.retarget(
            uow.session,
            holder,
            key,
            survivor_id=survivor_id,
            other_id=other_id,
            subject=uow.actor.subject,
        )
        changes = {f"attributes.{key}": {"old": str(other_id), "new": str(survivor_id)}}
        for record_id, version in rows:
            await uow.audit(
                kind=holder.value,
                entity_id=record_id,
                action="updated",
                version=version,
                changes=changes,
                note=f"the {kind.value} {other_id} was merged into {survivor_id}",
            )
            if holder is EntityKind.ORGANIZATION:
                org = await load_organization(uow.session, record_id)
                assert org is not None
                uow.stage(
                    organization_updated(
                        uow.outbox, org, changes, uow.actor, previous_directions=org.directions
                    )
                )
            else:
                person = await visible_person(
                    uow.session, principal, record_id, deleted=None, check_visible=False
                )
                directions = await effective_directions(uow.session, record_id)
                uow.stage(
                    person_updated(uow.outbox, person, changes, uow.actor, directions=directions)
                )
        count += len(rows)
    return count


async def mark_merged(
    uow: UnitOfWork,
    kind: EntityKind,
    *,
    survivor_id: uuid.UUID,
    survivor_version: int,
    other_id: uuid.UUID,
    other_version: int,
    changes: dict[str, Any],
    moved: Mapping[str, int],
) -> None:
    """Soft-delete the other with ``merged_into`` (records merged into it earlier now point at
    the survivor too, so every pointer leads to a live record) and audit both sides."""
    earlier = await queries.mark_merged(
        uow.session,
        kind,
        survivor_id=survivor_id,
        other_id=other_id,
        other_version=other_version,
        subject=uow.actor.subject,
    )
    for record_id, version in earlier:
        await uow.audit(
            kind=kind.value,
            entity_id=record_id,
            action="merged_into",
            version=version,
            changes={"merged_into": {"old": str(other_id), "new": str(survivor_id)}},
            note=f"{other_id}, which this was merged into, was merged into {survivor_id}",
        )
    await uow.audit(
        kind=kind.value,
        entity_id=survivor_id,
        action="merged",
        version=survivor_version,
        changes=changes,
        note=f"merged {other_id} into this ({dict(moved)})",
    )
    await uow.audit(
        kind=kind.value,
        entity_id=other_id,
        action="merged_into",
        version=other_version,
        changes={"merged_into": {"old": None, "new": str(survivor_id)}},
        note=f"merged into {survivor_id}",
    )


async def merge_organizations(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    org_id: uuid.UUID,
    request: MergeRequest,
    expected: set[int],
) -> MergeResult:
    """Merge ``request.other_id`` into the organization ``org_id`` (the survivor)."""
    async with work(runtime, principal) as uow:

        async def load(record_id: uuid.UUID) -> Organization:
            return await visible_organization(
                uow.session, principal, record_id, for_update=True, deleted=None
            )

        survivor, other, merged = await merge_pair(
            uow,
            principal,
            org_id,
            request,
            expected,
            load,
            merge_fields,
            kind=EntityKind.ORGANIZATION,
            noun="organization",
            not_found="No such organization.",
        )
        writable_directions(principal, moved_directions(survivor.directions, merged.directions))
        changes = changes_between(survivor, merged)
        version = survivor.version + 1
        subject = principal.subject
        await queries.update_survivor(
            uow.session,
            EntityKind.ORGANIZATION,
            org_id,
            storage_values(merged),
            version=version,
            subject=subject,
        )
        await queries.lock_employments(uow.session, employments.c.organization_id, [other.id])
        moved_employments = await queries.move_organization_employments(
            uow.session, survivor_id=org_id, other_id=other.id, subject=subject
        )
        moved_members = await queries.move_list_memberships(
            uow.session, survivor_id=org_id, other_id=other.id
        )
        moved_entries = await move_register_entries(uow, "organization_id", org_id, other.id)
        moved_references = await retarget_references(
            uow, principal, EntityKind.ORGANIZATION, org_id, other.id
        )
        await mark_merged(
            uow,
            EntityKind.ORGANIZATION,
            survivor_id=org_id,
            survivor_version=version,
            other_id=other.id,
            other_version=other.version + 1,
            changes=changes,
            moved={
                "employments": moved_employments,
                "list_memberships": moved_members,
                "register_entries": moved_entries,
                "references": moved_references,
            },
        )
        org = await load_organization(uow.session, org_id)
        gone = await load_organization(uow.session, other.id)
        assert org is not None
        assert gone is not None
        if changes:
            uow.stage(
                organization_updated(
                    uow.outbox, org, changes, uow.actor, previous_directions=survivor.directions
                )
            )
        uow.stage(
            organization_deleted(uow.outbox, gone, uow.actor),
            organization_merged(uow.outbox, org, gone, changes, uow.actor),
        )
        await register.announce_organization(uow, org, was_blocked=survivor.blocked)
    return MergeResult(
        survivor=org,
        merged_id=other.id,
        employments_moved=moved_employments,
        list_memberships_moved=moved_members,
        register_entries_moved=moved_entries,
        references_moved=moved_references,
    )


async def _move_employments(
    uow: UnitOfWork, principal: Principal, survivor_id: uuid.UUID, other_id: uuid.UUID
) -> tuple[list[MovedEmployment], list[tuple[Employment, str, dict[str, Any]]]]:
    """The other's employments become the survivor's: ``(what moved, what to publish)``.

    One at an organization where the survivor holds the same position is folded into the
    survivor's (its gaps filled, the other's soft-deleted); ended ones follow as they are.
    """
    session = uow.session
    await queries.lock_employments(session, employments.c.person_id, [survivor_id, other_id])
    mine = await queries.live_jobs(session, survivor_id)
    moved_to = {"person_id": {"old": str(other_id), "new": str(survivor_id)}}
    note = f"the person {other_id} was merged into {survivor_id}"
    touched_by = {"updated_by": principal.subject, "updated_at": func.now()}
    report: list[MovedEmployment] = []
    touched: list[tuple[Employment, str, dict[str, Any]]] = []

    async def write(
        job_id: uuid.UUID, action: str, changes: dict[str, Any], note: str, **values: Any
    ) -> Employment:
        return await rewrite_employment(
            uow, job_id, values, action=action, changes=changes, note=note
        )

    for job in await queries.live_jobs(session, other_id):
        index = next((i for i, kept in enumerate(mine) if same_employment(kept, job)), None)
        if index is None:
            moved = await write(
                job.id,
                "moved",
                moved_to,
                note,
                person_id=survivor_id,
                version=job.version + 1,
                **touched_by,
            )
            mine.append(moved)
            touched.append((moved, "updated", moved_to))
            report.append(
                MovedEmployment(employment_id=job.id, organization_id=job.organization_id)
            )
            continue
        kept = mine[index]
        fields = folded_employment(kept, job)
        changes = employment_changes(kept, fields)
        if changes:
            kept = await write(
                kept.id,
                "updated",
                changes,
                f"took in the employment {job.id}: {note}",
                **employment_storage_values(fields),
                version=kept.version + 1,
                **touched_by,
            )
            mine[index] = kept
            touched.append((kept, "updated", changes))
        gone = await write(
            job.id,
            "deleted",
            moved_to,
            f"folded into the employment {kept.id}: {note}",
            person_id=survivor_id,
            version=job.version + 1,
            **touched_by,
            **soft_delete_values(principal.subject),
        )
        touched.append((gone, "deleted", moved_to))
        report.append(
            MovedEmployment(
                employment_id=job.id, organization_id=job.organization_id, merged_into=kept.id
            )
        )
    ended = await queries.move_ended_employments(
        session, survivor_id=survivor_id, other_id=other_id, subject=principal.subject
    )
    for job_id, version in ended:
        await uow.audit(
            kind=EMPLOYMENT_KIND,
            entity_id=job_id,
            action="moved",
            version=version,
            changes=moved_to,
            note=note,
        )
    return report, touched


async def merge_persons(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    person_id: uuid.UUID,
    request: MergeRequest,
    expected: set[int],
) -> PersonMergeResult:
    """Merge ``request.other_id`` into the person ``person_id`` (the survivor)."""
    async with work(runtime, principal) as uow:
        session = uow.session

        async def load(record_id: uuid.UUID) -> Person:
            return await visible_person(
                session, principal, record_id, for_update=True, deleted=None
            )

        survivor, other, fields = await merge_pair(
            uow,
            principal,
            person_id,
            request,
            expected,
            load,
            merge_person_fields,
            kind=EntityKind.PERSON,
            noun="person",
            not_found="No such person.",
        )
        writable_directions(principal, set(survivor.directions) ^ set(fields.directions))
        previous = {
            *await effective_directions(session, person_id),
            *await effective_directions(session, other.id),
        }
        changes = person_changes(survivor, fields)
        version = survivor.version + 1
        await queries.update_survivor(
            session,
            EntityKind.PERSON,
            person_id,
            person_storage_values(fields),
            version=version,
            subject=principal.subject,
        )
        report, touched = await _move_employments(uow, principal, person_id, other.id)
        if not keeps_person_visible(
            fields.directions, await live_employment_count(session, person_id)
        ):
            raise invalid(
                [
                    {
                        "loc": ("values", "directions"),
                        "msg": "a person without employments needs a direction",
                        "type": "orphan",
                    }
                ]
            )
        moved_entries = await move_register_entries(uow, "person_id", person_id, other.id)
        moved_references = await retarget_references(
            uow, principal, EntityKind.PERSON, person_id, other.id
        )
        await mailing_facts.follow_merge(uow, person_id, version, other.id)
        folded = sum(1 for job in report if job.merged_into is not None)
        await mark_merged(
            uow,
            EntityKind.PERSON,
            survivor_id=person_id,
            survivor_version=version,
            other_id=other.id,
            other_version=other.version + 1,
            changes=changes,
            moved={
                "employments": len(report) - folded,
                "employments_folded": folded,
                "register_entries": moved_entries,
                "references": moved_references,
            },
        )
        person = await visible_person(session, principal, person_id, check_visible=False)
        gone = await visible_person(session, principal, other.id, deleted=None, check_visible=False)
        directions = sorted({*previous, *await effective_directions(session, person_id)})
        if changes:
            uow.stage(person_updated(uow.outbox, person, changes, uow.actor, directions=directions))
        for job, change, job_changes in touched:
            await publish_employment(uow, job, change, job_changes)
        uow.stage(
            person_deleted(uow.outbox, gone, uow.actor, directions=sorted(previous)),
            person_merged(
                uow.outbox, person, gone, changes, report, uow.actor, directions=directions
            ),
        )
        await register.announce_person(
            uow, person_id, version, directions, was_blocked=survivor.blocked
        )
    return PersonMergeResult(
        survivor=person,
        merged_id=other.id,
        employments_moved=len(report) - folded,
        employments_folded=folded,
        register_entries_moved=moved_entries,
        references_moved=moved_references,
    )


async def organization_duplicates(
    *, runtime: ServiceRuntime, principal: Principal, org_id: uuid.UUID, limit: int
) -> list[OrganizationDuplicate]:
    """Organizations that may be this one (live and visible to the caller), best first."""
    async with runtime.sessions() as session, session.begin():
        target = await visible_organization(session, principal, org_id)
        by_inn = await queries.organizations_matching(
            session, inns=[target.inn] if target.inn else [], emails=[], phones=[]
        )
        by_email = await queries.organizations_matching(
            session, inns=[], emails=sorted(set(target.emails)), phones=[]
        )
        by_phone = await queries.organizations_matching(
            session, inns=[], emails=[], phones=sorted({phone.number for phone in target.phones})
        )
        by_name = await queries.organizations_named_like(
            session, principal, org_id, with_inn=bool(target.inn), scan=NAME_SCAN
        )
        found = (by_inn | by_email | by_phone | by_name) - {org_id}
        if not found:
            return []
        rows = await queries.visible_organizations_by_name(
            session, principal, found, target.legal_name
        )
    ranked = sorted(
        (
            organization_duplicate(
                Organization.model_validate(row, from_attributes=True, context=STORED),
                inn=row.id in by_inn,
                email=row.id in by_email,
                phone=row.id in by_phone,
                name_similarity=float(row.name_similarity),
                similar_name=float(row.name_similarity) >= NAME_SIMILARITY,
            )
            for row in rows
        ),
        key=lambda c: (-c.score, str(c.organization.id)),
    )
    return ranked[:limit]


async def person_duplicates(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    person_id: uuid.UUID,
    same_birthday: bool,
    limit: int,
) -> list[DuplicateCandidate]:
    """Persons who may be this one (live and visible to the caller), best first."""
    async with runtime.sessions() as session, session.begin():
        target = await visible_person(session, principal, person_id)
        emails = sorted(
            {e.lower() for e in target.emails}
            | {e.lower() for job in target.employments for e in job.emails}
        )
        by_email: set[uuid.UUID] = set()
        if emails:
            by_email = await queries.persons_by_email(session, principal, person_id, emails)
        by_phone: set[uuid.UUID] = set()
        if target.phones:
            by_phone = await queries.persons_by_phone(session, principal, person_id, target)
        targets = await queries.person_name_keys(session, person_id)
        by_name: set[uuid.UUID] = set()
        if targets:
            await queries.set_similarity_threshold(session, NAME_SIMILARITY)
        for name in targets:  # the nearest names first, NAME_SCAN of them
            by_name |= await queries.persons_by_name(session, principal, person_id, name, NAME_SCAN)
        found = by_email | by_phone | by_name
        if not found:
            return []
        rows = await queries.persons_with_similarity(session, found, targets)
        ranked = sorted(
            (
                duplicate_candidate(
                    target,
                    Person.model_validate(row, from_attributes=True, context=STORED),
                    email=row.id in by_email,
                    phone=row.id in by_phone,
                    name_similarity=float(row.name_similarity),
                )
                for row in rows
            ),
            key=lambda c: (-c.score, str(c.person.id)),
        )
        if same_birthday:
            ranked = [c for c in ranked if c.birthday == "same"]
        chosen = ranked[:limit]
        people = await with_employments(session, principal, [c.person for c in chosen])
    return [c.model_copy(update={"person": p}) for c, p in zip(chosen, people, strict=True)]
