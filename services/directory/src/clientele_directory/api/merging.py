"""What merging two records of one kind shares, organizations and persons alike: the request,
locking both records in one order and checking their versions, the survivor's custom attribute
values, moving register entries and attribute references to the survivor, and marking the other
merged with the audit of both. Each kind's endpoint does the rest (its fields, its references).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol, TypeVar

from clientele_shared.auth.access import writable_directions
from clientele_shared.auth.principal import Principal
from clientele_shared.http.concurrency import check_version
from clientele_shared.http.problems import Conflict, NotFound, invalid
from clientele_shared.runtime import CurrentRuntime
from clientele_shared.service_layer import actor_of
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, Table, Text, cast, exists, func, literal, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.api.blocking import active
from clientele_directory.api.common import audit, soft_delete_values
from clientele_directory.api.register import KIND as ENTRY_KIND
from clientele_directory.attributes.rules import EntityKind
from clientele_directory.attributes.service import definitions_for, resolve_attributes
from clientele_directory.domain.merging import retargeted
from clientele_directory.organizations.rules import OrganizationFields, PatchRejected
from clientele_directory.organizations.service import load_organization
from clientele_directory.persons.rules import PersonFields
from clientele_directory.persons.service import effective_directions, visible_person
from clientele_directory.publishing import organization_updated, person_updated
from clientele_directory.tables import (
    attribute_definitions,
    employments,
    organizations,
    persons,
    unwanted_register,
)

TABLES = {EntityKind.ORGANIZATION: organizations, EntityKind.PERSON: persons}


class MergeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    other_id: uuid.UUID = Field(description="the record merged into this one (deleted)")
    other_version: int = Field(description="the version (ETag) of the other as you read it")
    take: list[str] = Field(
        default_factory=list,
        description="fields whose value comes from the other; `attributes` takes all its custom "
        "attribute values, `attributes.<key>` one of them",
    )
    values: dict[str, Any] = Field(
        default_factory=dict,
        description="fields set explicitly (win over both records); `attributes` is a merge "
        "patch of custom attribute values",
    )


class Mergeable(Protocol):
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def version(self) -> int: ...
    @property
    def deleted_at(self) -> datetime | None: ...
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
    session: AsyncSession,
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
    attributes = await merged_attributes(
        session,
        principal,
        kind,
        fields.attributes,
        patch,
        survivor_id=survivor_id,
        other_id=other.id,
    )
    return survivor, other, fields.model_copy(update={"attributes": attributes})


async def lock_employments(
    session: AsyncSession, column: ColumnElement[uuid.UUID], ids: Iterable[uuid.UUID]
) -> None:
    """Lock every employment (ended and deleted ones too) of these organizations or persons, in
    id order. The organization merge takes those of the merged organization, the person merge
    those of both persons, both in this order and before writing any: an organization merge and
    a person merge sharing employments wait for each other instead of deadlocking."""
    await session.execute(
        select(employments.c.id)
        .where(column.in_(list(ids)))
        .order_by(employments.c.id)
        .with_for_update()
    )


async def reference_keys(session: AsyncSession, holder: EntityKind, target: EntityKind) -> set[str]:
    """Keys of ``holder``'s custom attributes that refer to a ``target`` record."""
    definitions = await definitions_for(session, holder)
    return {key for key, found in definitions.items() if found.reference_kind is target}


async def merged_attributes(
    session: AsyncSession,
    principal: Principal,
    kind: EntityKind,
    chosen: Mapping[str, Any],
    patch: Mapping[str, Any],
    *,
    survivor_id: uuid.UUID,
    other_id: uuid.UUID,
) -> dict[str, Any]:
    """The survivor's custom attribute values: the chosen ones with ``patch`` checked against the
    definitions like any patch (422), references to the other pointing at the survivor."""
    values = dict(chosen)
    if patch:
        values = await resolve_attributes(session, principal, kind, values, patch, creating=False)
    keys = await reference_keys(session, kind, kind)
    return retargeted(values, keys, str(other_id), str(survivor_id))


async def move_register_entries(
    session: AsyncSession,
    principal: Principal,
    column: str,
    survivor_id: uuid.UUID,
    other_id: uuid.UUID,
) -> int:
    """Give the survivor the other's register entries (history too), so a block is never lost.

    A record has at most one active entry: when both have one, the survivor's stays and the
    other's is closed (removed, saying why) before it moves. Each entry's own trail says so.
    """
    target = unwanted_register.c[column]
    listed = unwanted_register.alias("listed")
    reason = f"merged into {survivor_id}, which has its own active entry"
    closed = (
        await session.scalars(
            update(unwanted_register)
            .where(
                target == other_id,
                active,
                exists(
                    select(1).where(listed.c[column] == survivor_id, listed.c.removed_at.is_(None))
                ),
            )
            .values(removed_at=func.now(), removed_by=principal.subject, removal_reason=reason)
            .returning(unwanted_register.c.id)
        )
    ).all()
    moved = (
        await session.scalars(
            update(unwanted_register)
            .where(target == other_id)
            .values({column: survivor_id})
            .returning(unwanted_register.c.id)
        )
    ).all()
    for entry_id in closed:
        await audit(
            session,
            principal,
            kind=ENTRY_KIND,
            entity_id=entry_id,
            action="removed",
            version=None,
            changes={"removed": {"old": False, "new": True}},
            note=reason,
        )
    for entry_id in moved:
        await audit(
            session,
            principal,
            kind=ENTRY_KIND,
            entity_id=entry_id,
            action="moved",
            version=None,
            changes={column: {"old": str(other_id), "new": str(survivor_id)}},
            note=f"merged into {survivor_id}",
        )
    return len(moved)


async def retarget_references(
    session: AsyncSession,
    runtime: CurrentRuntime,
    principal: Principal,
    kind: EntityKind,
    survivor_id: uuid.UUID,
    other_id: uuid.UUID,
) -> int:
    """Point every custom attribute that refers to the other at the survivor, on organizations
    and persons alike (deleted ones too); each changed record gets a version, an audit entry
    and an ``updated`` event. The two merged records are left to the merge itself."""
    count = 0
    actor = actor_of(principal)
    definitions = (
        await session.execute(
            select(attribute_definitions.c.entity_kind, attribute_definitions.c.key)
            .where(attribute_definitions.c.reference_kind == kind.value)
            .order_by(attribute_definitions.c.entity_kind, attribute_definitions.c.key)
        )
    ).all()
    for holder_kind, key in definitions:
        holder = EntityKind(holder_kind)
        table: Table = TABLES[holder]
        rows = (
            await session.execute(
                update(table)
                .where(
                    table.c.attributes[key].astext == str(other_id),
                    table.c.id.not_in([survivor_id, other_id]),
                )
                .values(
                    attributes=table.c.attributes.op("||", return_type=JSONB)(
                        func.jsonb_build_object(
                            cast(literal(key), Text), cast(literal(str(survivor_id)), Text)
                        )
                    ),
                    version=table.c.version + 1,
                    updated_by=principal.subject,
                    updated_at=func.now(),
                )
                .returning(table.c.id, table.c.version)
            )
        ).all()
        changes = {f"attributes.{key}": {"old": str(other_id), "new": str(survivor_id)}}
        for record_id, version in rows:
            await audit(
                session,
                principal,
                kind=holder.value,
                entity_id=record_id,
                action="updated",
                version=version,
                changes=changes,
                note=f"the {kind.value} {other_id} was merged into {survivor_id}",
            )
            if holder is EntityKind.ORGANIZATION:
                org = await load_organization(session, record_id)
                assert org is not None
                envelope = organization_updated(
                    runtime.outbox, org, changes, actor, previous_directions=org.directions
                )
            else:
                person = await visible_person(
                    session, principal, record_id, deleted=None, check_visible=False
                )
                envelope = person_updated(
                    runtime.outbox,
                    person,
                    changes,
                    actor,
                    directions=await effective_directions(session, record_id),
                )
            await runtime.outbox.add(session, envelope)
        count += len(rows)
    return count


async def mark_merged(
    session: AsyncSession,
    principal: Principal,
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
    table: Table = TABLES[kind]
    await session.execute(
        update(table)
        .where(table.c.id == other_id)
        .values(merged_into=survivor_id, **soft_delete_values(principal, other_version))
    )
    earlier = (
        await session.execute(
            update(table)
            .where(table.c.merged_into == other_id)
            .values(merged_into=survivor_id)
            .returning(table.c.id, table.c.version)
        )
    ).all()
    for record_id, version in earlier:
        await audit(
            session,
            principal,
            kind=kind.value,
            entity_id=record_id,
            action="merged_into",
            version=version,
            changes={"merged_into": {"old": str(other_id), "new": str(survivor_id)}},
            note=f"{other_id}, which this was merged into, was merged into {survivor_id}",
        )
    await audit(
        session,
        principal,
        kind=kind.value,
        entity_id=survivor_id,
        action="merged",
        version=survivor_version,
        changes=changes,
        note=f"merged {other_id} into this ({dict(moved)})",
    )
    await audit(
        session,
        principal,
        kind=kind.value,
        entity_id=other_id,
        action="merged_into",
        version=other_version,
        changes={"merged_into": {"old": None, "new": str(survivor_id)}},
        note=f"merged into {survivor_id}",
    )
