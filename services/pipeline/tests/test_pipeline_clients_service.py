"""The read models' service functions against real PostgreSQL (no Kafka, no HTTP): folding
directory events into whole records and applying them, version-guarded."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from clientele_pipeline.clients import service as clients
from clientele_shared.db import create_engine, sessionmaker
from clientele_shared.directory_read_models import OrganizationRecord
from clientele_shared.events.schemas.base import FieldChange
from clientele_shared.events.schemas.directory import (
    EmployeeCreated,
    EmployeeUpdated,
    OrganizationBlocked,
    OrganizationCreated,
    OrganizationMerged,
    OrganizationUpdated,
    PersonCreated,
    PersonDeleted,
)
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

pytestmark = pytest.mark.integration


@pytest.fixture
async def sessions(pipeline_migrated: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(pipeline_migrated)
    try:
        yield sessionmaker(engine)
    finally:
        await engine.dispose()


async def _apply(sessions: async_sessionmaker[AsyncSession], payload: BaseModel) -> None:
    async with sessions() as session, session.begin():
        for record in await clients.organization_records(session, payload):
            await clients.apply_organization(session, record)
        for person in await clients.person_records(session, payload):
            await clients.apply_person(session, person)
        for employee in await clients.employee_records(session, payload):
            await clients.apply_employee(session, employee)


async def _organization(
    sessions: async_sessionmaker[AsyncSession], org_id: uuid.UUID
) -> OrganizationRecord:
    async with sessions() as session:
        record = await clients.organization(session, org_id)
    assert record is not None
    return record


async def test_organizations_fold_version_guarded(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    org_id = uuid.uuid4()
    created = OrganizationCreated(
        organization_id=org_id, legal_name="А", inn="7707083893", status="active", directions=["n"]
    )
    await _apply(sessions, created)
    renamed = OrganizationUpdated(
        organization_id=org_id, version=3, changes={"legal_name": FieldChange(old="А", new="Б")}
    )
    await _apply(sessions, renamed)
    await _apply(sessions, created)  # a replay of version 1
    stale = OrganizationUpdated(
        organization_id=org_id, version=2, changes={"legal_name": FieldChange(old="А", new="В")}
    )
    await _apply(sessions, stale)
    record = await _organization(sessions, org_id)
    assert (record.legal_name, record.version, record.inn) == ("Б", 3, "7707083893")
    blocked = OrganizationBlocked(
        organization_id=org_id, entry_id=uuid.uuid4(), basis="inn", reason="r", decided_by="s"
    )
    await _apply(sessions, blocked)
    record = await _organization(sessions, org_id)
    assert record.blocked is True


async def test_an_unknown_organization_merged_leaves_a_tombstone(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    survivor, merged = uuid.uuid4(), uuid.uuid4()
    await _apply(
        sessions,
        OrganizationCreated(
            organization_id=survivor, legal_name="S", status="active", directions=["n"]
        ),
    )
    await _apply(
        sessions,
        OrganizationMerged(
            survivor_id=survivor,
            merged_id=merged,
            survivor_version=2,
            merged_version=4,
            changes={"short_name": FieldChange(old=None, new="С")},
            blocked=True,
        ),
    )
    tombstone = await _organization(sessions, merged)
    assert (tombstone.deleted, tombstone.merged_into, tombstone.version) == (True, survivor, 4)
    kept = await _organization(sessions, survivor)
    assert (kept.short_name, kept.blocked, kept.version) == ("С", True, 2)


async def test_persons_and_employees(sessions: async_sessionmaker[AsyncSession]) -> None:
    person_id, employee_id = uuid.uuid4(), uuid.uuid4()
    await _apply(sessions, PersonCreated(person_id=person_id, last_name="Иванов", directions=["n"]))
    await _apply(sessions, PersonDeleted(person_id=person_id, version=2))
    await _apply(
        sessions,
        EmployeeCreated(employee_id=employee_id, email=" A@B.example ", name="A", directions=["n"]),
    )
    await _apply(
        sessions,
        EmployeeUpdated(
            employee_id=employee_id,
            version=2,
            changes={"active": FieldChange(old=True, new=False), "roles": FieldChange(new=["x"])},
        ),
    )
    async with sessions() as session:
        person = (await clients.persons_of(session, [person_id]))[person_id]
        employee = await clients.employee(session, employee_id)
    assert (person.deleted, person.version, person.last_name) == (True, 2, "Иванов")
    assert employee is not None
    assert (employee.email, employee.active, employee.version) == ("a@b.example", False, 2)
