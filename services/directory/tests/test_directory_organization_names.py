"""Organizations' names per direction (ADR 57) against real PostgreSQL: the names table follows
every write of an organization, and the similar-name look-up reads only the partitions of the
caller's directions, with the same candidates."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from clientele_directory.app import create_runtime
from clientele_directory.imports.queries import NAME_SIMILARITY, similar_names
from clientele_directory.merging import service as merging
from clientele_directory.merging.schemas import MergeRequest
from clientele_directory.organizations import service as organizations
from clientele_directory.organizations.rules import OrganizationDraft, OrganizationPatch
from clientele_directory.settings import DirectorySettings
from clientele_shared.auth.principal import Principal
from clientele_shared.runtime import ServiceRuntime
from clientele_testkit.infra import Infrastructure
from directory_testkit import fresh_direction, fresh_inn
from pydantic import SecretStr
from sqlalchemy import text

pytestmark = pytest.mark.integration


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


def _sales(*directions: str) -> Principal:
    return Principal(
        subject=f"sales-{directions[0]}",
        roles=frozenset({"sales"}),
        directions=frozenset(directions),
    )


async def _names(runtime: ServiceRuntime, *ids: uuid.UUID) -> set[tuple[Any, ...]]:
    """The names table's rows of these organizations."""
    async with runtime.sessions() as session:
        rows = await session.execute(
            text(
                "SELECT direction, organization_id, name_key, has_inn FROM organization_names"
                " WHERE organization_id = ANY(:ids)"
            ),
            {"ids": list(ids)},
        )
        return {tuple(row) for row in rows}


async def _expected(runtime: ServiceRuntime, *ids: uuid.UUID) -> set[tuple[Any, ...]]:
    """What the names table must hold for these organizations: one row per live one and
    direction, as the organizations table says now."""
    async with runtime.sessions() as session:
        rows = await session.execute(
            text(
                "SELECT DISTINCT d, id, name_key, inn IS NOT NULL FROM organizations,"
                " unnest(directions) AS d WHERE id = ANY(:ids) AND deleted_at IS NULL"
            ),
            {"ids": list(ids)},
        )
        return {tuple(row) for row in rows}


async def _create(
    runtime: ServiceRuntime, who: Principal, name: str, *dirs: str, **fields: Any
) -> uuid.UUID:
    org = await organizations.create_organization(
        runtime=runtime,
        principal=who,
        draft=OrganizationDraft(legal_name=name, directions=list(dirs), **fields),
    )
    return org.id


async def test_names_follow_renames_inns_directions_deletes_restores_and_merges(
    runtime: ServiceRuntime,
) -> None:
    north, south = fresh_direction(), fresh_direction()
    me = _sales(north, south)
    org_id = await _create(runtime, me, "ООО «Ромашка Севера»", north)
    other_id = await _create(runtime, me, "ООО «Лютик Севера»", north, inn=fresh_inn())

    async def check(*present: tuple[str, uuid.UUID, str, bool]) -> None:
        assert await _names(runtime, org_id, other_id) == await _expected(runtime, org_id, other_id)
        assert await _names(runtime, org_id, other_id) == set(present)

    await check((north, org_id, "ромашка севера", False), (north, other_id, "лютик севера", True))
    version = 1
    for patch, present in [
        (OrganizationPatch(legal_name="АО «Василёк»"), {(north, org_id, "василек", False)}),
        (OrganizationPatch(inn=fresh_inn()), {(north, org_id, "василек", True)}),
        (
            OrganizationPatch(directions=[north, south]),
            {(north, org_id, "василек", True), (south, org_id, "василек", True)},
        ),
        (OrganizationPatch(directions=[south]), {(south, org_id, "василек", True)}),
        (OrganizationPatch(short_name="Василёк"), {(south, org_id, "василек", True)}),
    ]:
        await organizations.update_organization(
            runtime=runtime, principal=me, org_id=org_id, patch=patch, expected={version}
        )
        version += 1
        await check(*present, (north, other_id, "лютик севера", True))

    await organizations.delete_organization(
        runtime=runtime, principal=me, org_id=org_id, expected={version}
    )
    await check((north, other_id, "лютик севера", True))
    await organizations.restore_organization(
        runtime=runtime, principal=me, org_id=org_id, expected={version + 1}
    )
    await check((south, org_id, "василек", True), (north, other_id, "лютик севера", True))

    request = MergeRequest(other_id=other_id, other_version=1, take=[])
    await merging.merge_organizations(
        runtime=runtime, principal=me, org_id=org_id, request=request, expected={version + 2}
    )
    # the survivor took the other's direction; the merged one is gone from the names
    await check((north, org_id, "василек", True), (south, org_id, "василек", True))


async def _lookup(
    runtime: ServiceRuntime, principal: Principal, row: uuid.UUID, *, explain: bool = False
) -> Any:
    """The import's similar-name statement for one new row without an INN, the organization
    ``row`` already written (with its plan when ``explain``): the candidates' ids, or the plan
    as JSON."""
    sql = similar_names(False, principal.sees_all_directions)
    params: dict[str, Any] = {
        "nums": [1],
        "positions": [1],
        "created": [row],
        "threshold": NAME_SIMILARITY,
        "limit": 1000,
    }
    if not principal.sees_all_directions:
        params["dirs"] = sorted(principal.directions)
    async with runtime.sessions() as session, session.begin():
        await session.execute(
            text("SELECT set_config('pg_trgm.similarity_threshold', :s, true)"),
            {"s": str(NAME_SIMILARITY)},
        )
        if not explain:
            return {row.id for row in await session.execute(sql, params)}
        statement = text("EXPLAIN (ANALYZE, FORMAT JSON) " + sql.text).bindparams(
            *sql.compile().binds.values()  # the statement's own typed parameters
        )
        plan = await session.scalar(statement, params)
        return plan if isinstance(plan, list) else json.loads(plan)


def _scanned(node: dict[str, Any]) -> set[str]:
    """The relations a plan's nodes read (those executed at least once)."""
    found = set()
    if node.get("Relation Name") and node.get("Actual Loops", 0) > 0:
        found.add(node["Relation Name"])
    for child in node.get("Plans", []):
        found |= _scanned(child)
    return found


async def _partition(runtime: ServiceRuntime, direction: str) -> str:
    async with runtime.sessions() as session:
        found: str = await session.scalar(
            text(
                "SELECT tableoid::regclass::text FROM organization_names"
                " WHERE direction = :d LIMIT 1"
            ),
            {"d": direction},
        )
        return found


async def test_similar_names_read_only_the_callers_directions(runtime: ServiceRuntime) -> None:
    north = fresh_direction()
    mine = await _create(runtime, _sales(north), "ООО «Сосновый Бор»", north)
    # organizations of the same name in other directions, at least one in another partition
    others: dict[str, uuid.UUID] = {}
    partitions = {await _partition(runtime, north)}
    while len(partitions) < 2:
        direction = fresh_direction()
        others[direction] = await _create(
            runtime, _sales(direction), "ЗАО «Сосновый Бор»", direction
        )
        partitions.add(await _partition(runtime, direction))

    # the new row, written in a direction of its own: never its own candidate
    elsewhere = fresh_direction()
    row = await _create(runtime, _sales(elsewhere), "Сосновый Бор", elsewhere)

    me = _sales(north)
    assert await _lookup(runtime, me, row) == {mine}
    plan = await _lookup(runtime, me, row, explain=True)
    scanned = _scanned(plan[0]["Plan"])
    names_read = {r for r in scanned if r.startswith("organization_names")}
    assert names_read == {await _partition(runtime, north)}

    # whoever sees every direction finds them all, in every partition
    everyone = Principal(subject="root", roles=frozenset({"admin"}), directions=frozenset())
    assert everyone.sees_all_directions
    assert {mine, *others.values()} <= await _lookup(runtime, everyone, row)
    # the other directions' own look-ups do not see north's
    for direction, org_id in others.items():
        assert await _lookup(runtime, _sales(direction), row) == {org_id}
