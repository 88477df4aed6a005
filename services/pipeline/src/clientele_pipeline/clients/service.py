"""The read models' operations: fold a directory event into whole records and apply them;
look clients, persons and employees up for the deals."""

from __future__ import annotations

import uuid

from clientele_shared.events.schemas.directory import (
    EmployeeCreated,
    EmployeeUpdated,
    OrganizationBlocked,
    OrganizationCreated,
    OrganizationDeleted,
    OrganizationMerged,
    OrganizationRestored,
    OrganizationUnblocked,
    OrganizationUpdated,
    PersonBlocked,
    PersonCreated,
    PersonDeleted,
    PersonMerged,
    PersonRestored,
    PersonUnblocked,
    PersonUpdated,
)
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_pipeline.clients import queries
from clientele_pipeline.clients.rules import (
    EmployeeRecord,
    OrganizationRecord,
    PersonRecord,
    employee_created,
    employee_updated,
    organization_created,
    organization_updated,
    person_created,
    person_updated,
)
from clientele_pipeline.tables import employees, organizations, persons


async def organization(
    session: AsyncSession, organization_id: uuid.UUID, *, lock: bool = False
) -> OrganizationRecord | None:
    row = await queries.load(session, organizations, organization_id, lock=lock)
    return OrganizationRecord.model_validate(row) if row else None


async def persons_of(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, PersonRecord]:
    rows = await queries.load_many(session, persons, ids)
    return {row["person_id"]: PersonRecord.model_validate(row) for row in rows}


async def employee(session: AsyncSession, employee_id: uuid.UUID) -> EmployeeRecord | None:
    row = await queries.load(session, employees, employee_id)
    return EmployeeRecord.model_validate(row) if row else None


async def apply_organization(session: AsyncSession, record: OrganizationRecord) -> None:
    """The one write of the organizations read model: a whole record at its version."""
    await queries.upsert(session, organizations, record)


async def apply_person(session: AsyncSession, record: PersonRecord) -> None:
    await queries.upsert(session, persons, record)


async def apply_employee(session: AsyncSession, record: EmployeeRecord) -> None:
    await queries.upsert(session, employees, record)


async def organization_records(
    session: AsyncSession, payload: BaseModel
) -> list[OrganizationRecord]:
    """The whole records an organization event leads to (none when it says nothing the read
    model keeps, or names an organization not seen yet)."""
    if isinstance(payload, OrganizationCreated):
        return [organization_created(payload)]
    if isinstance(payload, OrganizationMerged):
        merged = await organization(session, payload.merged_id, lock=True)
        tombstone = OrganizationRecord(
            organization_id=payload.merged_id, legal_name="", version=payload.merged_version
        )
        records = [
            (merged or tombstone).model_copy(
                update={
                    "deleted": True,
                    "merged_into": payload.survivor_id,
                    "version": max(payload.merged_version, merged.version if merged else 0),
                }
            )
        ]
        survivor = await organization(session, payload.survivor_id, lock=True)
        if survivor is not None:
            changes = OrganizationUpdated(
                organization_id=payload.survivor_id,
                version=payload.survivor_version,
                changes=payload.changes,
                blocked=payload.blocked,
            )
            records.append(organization_updated(survivor, changes))
        return records
    organization_id = getattr(payload, "organization_id", None)
    if organization_id is None:
        return []
    current = await organization(session, organization_id, lock=True)
    if current is None:
        return []
    if isinstance(payload, OrganizationUpdated):
        return [organization_updated(current, payload)]
    if isinstance(payload, OrganizationDeleted | OrganizationRestored):
        deleted = isinstance(payload, OrganizationDeleted)
        return [
            current.model_copy(
                update={"deleted": deleted, "blocked": payload.blocked, "version": payload.version}
            )
        ]
    if isinstance(payload, OrganizationBlocked | OrganizationUnblocked):
        return [current.model_copy(update={"blocked": isinstance(payload, OrganizationBlocked)})]
    return []


async def person_records(session: AsyncSession, payload: BaseModel) -> list[PersonRecord]:
    """The whole records a person event leads to (employments are not kept)."""
    if isinstance(payload, PersonCreated):
        return [person_created(payload)]
    if isinstance(payload, PersonMerged):
        rows = await persons_of(session, [payload.merged_id])
        merged = rows.get(payload.merged_id) or PersonRecord(
            person_id=payload.merged_id, version=payload.merged_version
        )
        return [
            merged.model_copy(
                update={
                    "deleted": True,
                    "merged_into": payload.survivor_id,
                    "version": max(payload.merged_version, merged.version),
                }
            )
        ]
    person_id = getattr(payload, "person_id", None)
    current = (await persons_of(session, [person_id])).get(person_id) if person_id else None
    if current is None:
        return []
    if isinstance(payload, PersonUpdated):
        return [person_updated(current, payload)]
    if isinstance(payload, PersonDeleted):
        return [current.model_copy(update={"deleted": True, "version": payload.version})]
    if isinstance(payload, PersonRestored):
        update = {"deleted": False, "blocked": payload.blocked, "version": payload.version}
        return [current.model_copy(update=update)]
    if isinstance(payload, PersonBlocked | PersonUnblocked):
        return [current.model_copy(update={"blocked": isinstance(payload, PersonBlocked)})]
    return []


async def employee_records(session: AsyncSession, payload: BaseModel) -> list[EmployeeRecord]:
    if isinstance(payload, EmployeeCreated):
        return [employee_created(payload)]
    if isinstance(payload, EmployeeUpdated):
        current = await employee(session, payload.employee_id)
        return [employee_updated(current, payload)] if current else []
    return []
