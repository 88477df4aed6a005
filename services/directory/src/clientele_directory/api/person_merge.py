"""Duplicate persons: the candidates for one person, and merging two persons into one.

The merge follows the organizations' (``merging`` holds what both share): the survivor keeps the
chosen values and takes the other's employments (one employment at the same place in the same
position is folded into the survivor's), register entries and the attribute references to it;
the other is soft-deleted pointing to the survivor.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from clientele_shared.auth.access import writable_directions
from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.auth.principal import Principal
from clientele_shared.events.schemas.directory import MovedEmployment
from clientele_shared.http.concurrency import IfMatch, etag, required_versions
from clientele_shared.http.problems import invalid
from clientele_shared.runtime import CurrentRuntime
from clientele_shared.service_layer import UnitOfWork, actor_of
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel
from sqlalchemy import ColumnElement, Float, Text, and_, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY, array
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.api.blocking import announce_person
from clientele_directory.api.common import audit, legacy_work, soft_delete_values
from clientele_directory.api.merging import (
    MergeRequest,
    lock_employments,
    mark_merged,
    merge_pair,
    move_register_entries,
    retarget_references,
)
from clientele_directory.attributes.rules import EntityKind
from clientele_directory.persons.queries import person_select
from clientele_directory.persons.queries import visible_employments as _visible_employments
from clientele_directory.persons.rules import (
    NAME_SIMILARITY,
    DuplicateCandidate,
    Employment,
    Person,
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
)
from clientele_directory.publishing import person_deleted, person_merged, person_updated
from clientele_directory.tables import employments, persons
from clientele_directory.values import STORED
from clientele_directory.visibility import person_visible

router = APIRouter(prefix="/v1/persons", tags=["persons"])
NAME_SCAN = 50
"""The nearest names a candidate search takes per name of the person (among those he sees)."""


class PersonMergeResult(BaseModel):
    survivor: Person
    merged_id: uuid.UUID
    employments_moved: int
    employments_folded: int
    register_entries_moved: int
    references_moved: int


async def _live_jobs(session: AsyncSession, person_id: uuid.UUID) -> list[Employment]:
    """Every live employment of the person (whoever may see it), locked."""
    rows = (
        await session.execute(
            select(employments)
            .where(employments.c.person_id == person_id, employments.c.deleted_at.is_(None))
            .order_by(employments.c.created_at, employments.c.id)
            .with_for_update()
        )
    ).all()
    return [Employment.model_validate(row, from_attributes=True, context=STORED) for row in rows]


async def _move_employments(
    uow: UnitOfWork, principal: Principal, survivor_id: uuid.UUID, other_id: uuid.UUID
) -> tuple[list[MovedEmployment], list[tuple[Employment, str, dict[str, Any]]]]:
    """The other's employments become the survivor's: ``(what moved, what to publish)``.

    One at an organization where the survivor holds the same position is folded into the
    survivor's (its gaps filled, the other's soft-deleted); ended ones follow as they are.
    """
    session = uow.session
    await lock_employments(session, employments.c.person_id, [survivor_id, other_id])
    mine = await _live_jobs(session, survivor_id)
    moved_to = {"person_id": {"old": str(other_id), "new": str(survivor_id)}}
    note = f"the person {other_id} was merged into {survivor_id}"
    report: list[MovedEmployment] = []
    touched: list[tuple[Employment, str, dict[str, Any]]] = []

    async def write(
        job_id: uuid.UUID, action: str, changes: dict[str, Any], note: str, **values: Any
    ) -> Employment:
        return await rewrite_employment(
            uow, job_id, values, action=action, changes=changes, note=note
        )

    for job in await _live_jobs(session, other_id):
        index = next((i for i, kept in enumerate(mine) if same_employment(kept, job)), None)
        if index is None:
            moved = await write(
                job.id,
                "moved",
                moved_to,
                note,
                person_id=survivor_id,
                version=job.version + 1,
                updated_by=principal.subject,
                updated_at=func.now(),
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
                updated_by=principal.subject,
                updated_at=func.now(),
            )
            mine[index] = kept
            touched.append((kept, "updated", changes))
        gone = await write(
            job.id,
            "deleted",
            moved_to,
            f"folded into the employment {kept.id}: {note}",
            person_id=survivor_id,
            **soft_delete_values(principal, job.version + 1),
        )
        touched.append((gone, "deleted", moved_to))
        report.append(
            MovedEmployment(
                employment_id=job.id, organization_id=job.organization_id, merged_into=kept.id
            )
        )
    ended = (
        await session.execute(
            update(employments)
            .where(employments.c.person_id == other_id)
            .values(
                person_id=survivor_id,
                version=employments.c.version + 1,
                updated_by=principal.subject,
                updated_at=func.now(),
            )
            .returning(employments.c.id, employments.c.version)
        )
    ).all()
    for job_id, version in ended:
        await audit(
            session,
            principal,
            kind=EMPLOYMENT_KIND,
            entity_id=job_id,
            action="moved",
            version=version,
            changes=moved_to,
            note=note,
        )
    return report, touched


@router.post("/{person_id}/merge")
async def merge_persons(
    person_id: uuid.UUID,
    request: MergeRequest,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> PersonMergeResult:
    """Merge ``other_id`` into this person (the survivor, If-Match with its ETag; the other's
    version in ``other_version``, 409 when stale).

    By default the survivor's values stay, empty ones are filled, phones, e-mails and directions
    are united (``take`` and ``values`` choose otherwise); consent is never widened: a channel
    stays agreed only if both persons agreed. Both must be visible (404) and the caller must
    belong to every direction of both (403); a person merged already, or into himself, is a
    409. Employments (folded when both held the same position at one organization), register
    entries and attribute references move to the survivor; the other is soft-deleted with
    ``merged_into``; both are audited; ``directory.person.merged`` lists the moved employments.
    """
    wanted = required_versions(if_match)
    async with runtime.sessions() as session, session.begin():

        async def load(record_id: uuid.UUID) -> Person:
            return await visible_person(
                session, principal, record_id, for_update=True, deleted=None
            )

        survivor, other, fields = await merge_pair(
            session,
            principal,
            person_id,
            request,
            wanted,
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
        await session.execute(
            update(persons)
            .where(persons.c.id == person_id)
            .values(
                **person_storage_values(fields),
                version=version,
                updated_by=principal.subject,
                updated_at=func.now(),
            )
        )
        async with legacy_work(session, runtime, principal) as uow:
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
        moved_entries = await move_register_entries(
            session, principal, "person_id", person_id, other.id
        )
        moved_references = await retarget_references(
            session, runtime, principal, EntityKind.PERSON, person_id, other.id
        )
        folded = sum(1 for job in report if job.merged_into is not None)
        await mark_merged(
            session,
            principal,
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
        actor = actor_of(principal)
        if changes:
            await runtime.outbox.add(
                session,
                person_updated(runtime.outbox, person, changes, actor, directions=directions),
            )
        for job, change, job_changes in touched:
            async with legacy_work(session, runtime, principal) as uow:
                await publish_employment(uow, job, change, job_changes)
        await runtime.outbox.add(
            session, person_deleted(runtime.outbox, gone, actor, directions=sorted(previous))
        )
        await runtime.outbox.add(
            session,
            person_merged(
                runtime.outbox, person, gone, changes, report, actor, directions=directions
            ),
        )
        async with legacy_work(session, runtime, principal) as uow:
            await announce_person(
                uow,
                person_id,
                version,
                directions,
                was_blocked=survivor.blocked,
            )
    response.headers["ETag"] = etag(person.version)
    return PersonMergeResult(
        survivor=person,
        merged_id=other.id,
        employments_moved=len(report) - folded,
        employments_folded=folded,
        register_entries_moved=moved_entries,
        references_moved=moved_references,
    )


# --- duplicate candidates --------------------------------------------------------------------


def _person_key() -> ColumnElement[str]:
    """SQL: the person's name as "last first" in Latin letters, the Cyrillic one first (indexed
    for nearest-neighbour scans, migration 0015)."""
    return func.directory_person_key(
        persons.c.last_name,
        persons.c.first_name,
        persons.c.last_name_latin,
        persons.c.first_name_latin,
    )


def _name_similarity(targets: list[str]) -> ColumnElement[float]:
    """SQL: the best trigram similarity between the row's name and the ``targets``."""
    if not targets:
        return literal(0.0)
    key = _person_key()
    best = func.greatest(*(func.similarity(key, literal(t, Text)) for t in targets))
    return func.coalesce(best, 0.0)


async def _ids(session: AsyncSession, stmt: Any) -> set[uuid.UUID]:
    return set((await session.scalars(stmt)).all())


@router.get("/{person_id}/duplicates")
async def person_duplicates(
    person_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    same_birthday: Annotated[
        bool, Query(description="only candidates born the same day (both birthdays known)")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> list[DuplicateCandidate]:
    """Persons who may be this one (live, and visible to the caller: nobody else's people are
    shown or counted), best first: a shared e-mail (his own or a work one, case aside), a
    shared personal phone, a similar name (Cyrillic and Latin compared in Latin letters,
    trigram similarity ≥ 0.5); a different birthday ranks a candidate down. 404 for a person
    the caller may not see."""
    async with runtime.sessions() as session, session.begin():
        target = await visible_person(session, principal, person_id)
        candidate = and_(
            persons.c.id != person_id, persons.c.deleted_at.is_(None), person_visible(principal)
        )
        emails = sorted(
            {e.lower() for e in target.emails}
            | {e.lower() for job in target.employments for e in job.emails}
        )
        by_email: set[uuid.UUID] = set()
        if emails:
            wanted = array(emails, type_=Text).cast(ARRAY(Text))
            by_email = await _ids(
                session,
                select(persons.c.id).where(
                    func.directory_fold_emails(persons.c.emails).op("&&")(wanted), candidate
                ),
            ) | await _ids(
                session,
                select(employments.c.person_id)
                .join(persons, persons.c.id == employments.c.person_id)
                .where(
                    func.directory_fold_emails(employments.c.emails).op("&&")(wanted),
                    employments.c.deleted_at.is_(None),
                    candidate,
                ),
            )
        by_phone: set[uuid.UUID] = set()
        if target.phones:
            same_phone = [
                persons.c.phones.contains([{"number": p.number, "extension": p.extension}])
                for p in target.phones
            ]
            by_phone = await _ids(session, select(persons.c.id).where(or_(*same_phone), candidate))
        keys = (
            await session.execute(
                select(
                    func.directory_person_name_key(persons.c.last_name, persons.c.first_name),
                    func.directory_person_name_key(
                        persons.c.last_name_latin, persons.c.first_name_latin
                    ),
                ).where(persons.c.id == person_id)
            )
        ).one()
        targets = sorted({key for key in keys if key})
        by_name: set[uuid.UUID] = set()
        if targets:
            await session.execute(
                select(func.set_config("pg_trgm.similarity_threshold", str(NAME_SIMILARITY), True))
            )
        for name in targets:  # the nearest names first (a GiST scan), NAME_SCAN of them
            key, wanted_name = _person_key(), literal(name, Text)
            by_name |= await _ids(
                session,
                select(persons.c.id)
                .where(key.op("%")(wanted_name), candidate)
                .order_by(key.op("<->", return_type=Float)(wanted_name))
                .limit(NAME_SCAN),
            )
        similarity = _name_similarity(targets)
        found = by_email | by_phone | by_name
        if not found:
            return []
        rows = (
            await session.execute(
                person_select()
                .add_columns(similarity.label("name_similarity"))
                .where(persons.c.id.in_(found))
            )
        ).all()
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
        jobs = await _visible_employments(session, principal, [c.person.id for c in chosen])
    return [
        c.model_copy(
            update={"person": c.person.model_copy(update={"employments": jobs[c.person.id]})}
        )
        for c in chosen
    ]
