"""The directory's business operations through their service functions against real PostgreSQL
(no HTTP, no Kafka): each one a unit of work with its version, audit entries and outbox rows."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from clientele_directory.app import create_runtime
from clientele_directory.lists import service as lists
from clientele_directory.lists.rules import ListDraft, MembershipRequest
from clientele_directory.merging import service as merging
from clientele_directory.merging.schemas import MergeRequest
from clientele_directory.organizations import service as organizations
from clientele_directory.organizations.rules import OrganizationDraft, OrganizationPatch
from clientele_directory.persons import service as persons
from clientele_directory.persons.rules import PersonDraft
from clientele_directory.settings import DirectorySettings
from clientele_directory.tables import audit_log, outbox
from clientele_shared.auth.principal import Principal
from clientele_shared.events.topics import ORGANIZATIONS
from clientele_shared.http.concurrency import PreconditionFailed
from clientele_shared.http.problems import Conflict, NotFound
from clientele_shared.runtime import ServiceRuntime
from clientele_testkit.infra import Infrastructure
from pydantic import SecretStr
from sqlalchemy import select

pytestmark = pytest.mark.integration

ALICE = Principal(subject="alice", roles=frozenset({"sales"}), directions=frozenset({"north"}))
BOB = Principal(subject="bob", roles=frozenset({"sales"}), directions=frozenset({"south"}))


@pytest.fixture
async def runtime(infra: Infrastructure, migrated: None) -> AsyncIterator[ServiceRuntime]:
    settings = DirectorySettings(
        database_url=SecretStr(infra.test_database_url("directory")),
        redis_url=SecretStr(infra.redis_url),
        kafka_bootstrap_servers=infra.kafka_bootstrap_servers,
    )
    runtime = create_runtime(settings)
    try:
        yield runtime
    finally:
        await runtime.stop()


async def _audit(runtime: ServiceRuntime, entity_id: uuid.UUID) -> list[tuple[str, int | None]]:
    async with runtime.sessions() as session:
        rows = await session.execute(
            select(audit_log.c.action, audit_log.c.version)
            .where(audit_log.c.entity_id == entity_id)
            .order_by(audit_log.c.id)
        )
        return [(row.action, row.version) for row in rows]


async def _events(runtime: ServiceRuntime, entity_id: uuid.UUID) -> list[str]:
    async with runtime.sessions() as session:
        rows = await session.scalars(
            select(outbox.c.event_type)
            .where(outbox.c.key == str(entity_id), outbox.c.topic == ORGANIZATIONS)
            .order_by(outbox.c.id)
        )
        return list(rows)


async def _create(runtime: ServiceRuntime, name: str = "ООО Ромашка") -> uuid.UUID:
    org = await organizations.create_organization(
        runtime=runtime,
        principal=ALICE,
        draft=OrganizationDraft(legal_name=name, directions=["north"]),
    )
    return org.id


async def test_update_writes_a_version_with_its_audit_and_event_and_refuses_a_stale_if_match(
    runtime: ServiceRuntime,
) -> None:
    org_id = await _create(runtime)
    patch = OrganizationPatch(short_name="Ромашка")
    org = await organizations.update_organization(
        runtime=runtime, principal=ALICE, org_id=org_id, patch=patch, expected={1}
    )
    assert (org.version, org.short_name) == (2, "Ромашка")
    with pytest.raises(PreconditionFailed):
        await organizations.update_organization(
            runtime=runtime,
            principal=ALICE,
            org_id=org_id,
            patch=OrganizationPatch(short_name="Лютик"),
            expected={1},
        )
    unchanged = await organizations.update_organization(
        runtime=runtime, principal=ALICE, org_id=org_id, patch=patch, expected={2}
    )
    assert unchanged.version == 2  # a patch that changes nothing writes nothing
    assert await _audit(runtime, org_id) == [("created", 1), ("updated", 2)]
    assert await _events(runtime, org_id) == [
        "directory.organization.created",
        "directory.organization.updated",
    ]
    with pytest.raises(NotFound):  # another direction's caller does not learn it exists
        await organizations.update_organization(
            runtime=runtime, principal=BOB, org_id=org_id, patch=patch, expected={2}
        )


async def test_soft_delete_and_restore_are_versions_and_nothing_is_written_when_refused(
    runtime: ServiceRuntime,
) -> None:
    org_id = await _create(runtime)
    with pytest.raises(Conflict):
        await organizations.restore_organization(
            runtime=runtime, principal=ALICE, org_id=org_id, expected={1}
        )
    assert (
        await organizations.delete_organization(
            runtime=runtime, principal=ALICE, org_id=org_id, expected={1}
        )
        == 2
    )
    with pytest.raises(NotFound):
        await organizations.get_organization(
            runtime=runtime, principal=ALICE, org_id=org_id, include_deleted=False
        )
    with pytest.raises(PreconditionFailed):
        await organizations.restore_organization(
            runtime=runtime, principal=ALICE, org_id=org_id, expected={1}
        )
    restored = await organizations.restore_organization(
        runtime=runtime, principal=ALICE, org_id=org_id, expected={2}
    )
    assert (restored.version, restored.deleted_at) == (3, None)
    assert await _audit(runtime, org_id) == [("created", 1), ("deleted", 2), ("restored", 3)]
    assert await _events(runtime, org_id) == [
        "directory.organization.created",
        "directory.organization.deleted",
        "directory.organization.restored",
    ]


async def test_merge_moves_the_other_into_the_survivor_in_one_unit_of_work(
    runtime: ServiceRuntime,
) -> None:
    survivor_id = await _create(runtime, "ООО Ромашка")
    other_id = await _create(runtime, "Ромашка ООО")
    person = await persons.create_person(
        runtime=runtime,
        principal=ALICE,
        draft=PersonDraft(last_name="Иванов", employments=[{"organization_id": other_id}]),
    )
    request = MergeRequest(other_id=other_id, other_version=1, take=["short_name"])
    with pytest.raises(Conflict):  # the other changed since it was read
        await merging.merge_organizations(
            runtime=runtime,
            principal=ALICE,
            org_id=survivor_id,
            request=request.model_copy(update={"other_version": 2}),
            expected={1},
        )
    result = await merging.merge_organizations(
        runtime=runtime, principal=ALICE, org_id=survivor_id, request=request, expected={1}
    )
    assert (result.survivor.version, result.merged_id, result.employments_moved) == (
        2,
        other_id,
        1,
    )
    moved = await persons.get_person(
        runtime=runtime, principal=ALICE, person_id=person.id, include_deleted=False
    )
    assert [job.organization_id for job in moved.employments] == [survivor_id]
    assert await _audit(runtime, survivor_id) == [("created", 1), ("merged", 2)]
    assert await _audit(runtime, other_id) == [("created", 1), ("merged_into", 2)]
    assert await _events(runtime, other_id) == [
        "directory.organization.created",
        "directory.organization.deleted",
    ]
    assert (await _events(runtime, survivor_id))[-1] == "directory.organization.merged"
    with pytest.raises(Conflict):  # merged away: it cannot be restored
        await organizations.restore_organization(
            runtime=runtime, principal=ALICE, org_id=other_id, expected={2}
        )


async def test_a_lists_members_and_deletion_are_units_of_work_with_audit_and_events(
    runtime: ServiceRuntime,
) -> None:
    ours = await _create(runtime, "ООО Северная")
    theirs = (
        await organizations.create_organization(
            runtime=runtime,
            principal=BOB,
            draft=OrganizationDraft(legal_name="ООО Южная", directions=["south"]),
        )
    ).id
    found = await lists.create_list(
        runtime=runtime, principal=ALICE, draft=ListDraft(name="Север", directions=["north"])
    )
    change = await lists.add_members(
        runtime=runtime,
        principal=ALICE,
        list_id=found.id,
        request=MembershipRequest(organization_ids=[ours, theirs]),
    )
    assert (change.added, change.not_found) == (1, [str(theirs)])  # south's is never added
    with pytest.raises(NotFound):
        await lists.delete_list(runtime=runtime, principal=BOB, list_id=found.id, expected={1})
    with pytest.raises(PreconditionFailed):
        await lists.delete_list(runtime=runtime, principal=ALICE, list_id=found.id, expected={7})
    assert (
        await lists.delete_list(runtime=runtime, principal=ALICE, list_id=found.id, expected={1})
        == 2
    )
    assert await _audit(runtime, found.id) == [
        ("created", 1),
        ("members_changed", 1),
        ("deleted", 2),
    ]
    async with runtime.sessions() as session:
        events = await session.scalars(
            select(outbox.c.event_type)
            .where(outbox.c.key == f"list:{found.id}")
            .order_by(outbox.c.id)
        )
        assert list(events) == [
            "directory.list.changed",
            "directory.list.membership_changed",
            "directory.list.changed",
        ]
