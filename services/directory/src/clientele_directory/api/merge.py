"""Merging two organizations: the survivor keeps the chosen values and takes the other's
employments, list memberships and register entries; the other is soft-deleted pointing to it."""

from __future__ import annotations

import uuid
from typing import Any

from clientele_shared.auth.access import writable_directions
from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.http.concurrency import IfMatch, check_version, etag, required_versions
from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from clientele_directory.api.blocking import announce_organization
from clientele_directory.api.common import (
    Conflict,
    Runtime,
    actor_of,
    audit,
    invalid,
    soft_delete_values,
)
from clientele_directory.api.organizations import load_organization, visible_organization
from clientele_directory.domain.organizations import (
    Organization,
    PatchRejected,
    changes_between,
    merge_fields,
    moved_directions,
    storage_values,
)
from clientele_directory.events import (
    organization_deleted,
    organization_merged,
    organization_updated,
)
from clientele_directory.store import (
    employments,
    organization_list_members,
    organizations,
    unwanted_register,
)

router = APIRouter(prefix="/v1/organizations", tags=["organizations"])


class MergeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    other_id: uuid.UUID = Field(description="the organization merged into this one (deleted)")
    other_version: int = Field(description="the version (ETag) of the other as you read it")
    take: list[str] = Field(
        default_factory=list, description="fields whose value comes from the other"
    )
    values: dict[str, Any] = Field(
        default_factory=dict, description="fields set explicitly (win over both records)"
    )


class MergeResult(BaseModel):
    survivor: Organization
    merged_id: uuid.UUID
    employments_moved: int
    list_memberships_moved: int
    register_entries_moved: int


@router.post("/{org_id}/merge")
async def merge_organizations(
    org_id: uuid.UUID,
    request: MergeRequest,
    principal: CurrentPrincipal,
    runtime: Runtime,
    response: Response,
    if_match: IfMatch = None,
) -> MergeResult:
    """Merge ``other_id`` into this organization (the survivor, If-Match with its ETag).

    By default the survivor's values stay, its empty fields are filled and list fields united
    (``take`` and ``values`` choose otherwise). Both must be visible (404) and the caller must
    belong to every direction of both (403). Employments, static list memberships and register
    entries move to the survivor; the other is soft-deleted with ``merged_into``; both are
    audited; ``directory.organization.merged`` tells other services to re-point references.
    """
    wanted = required_versions(if_match)
    if request.other_id == org_id:
        raise Conflict("An organization cannot be merged into itself.")
    async with runtime.sessions() as session, session.begin():
        first, second = sorted((org_id, request.other_id))  # one lock order: no deadlocks
        locked = {
            first: await visible_organization(session, principal, first, for_update=True),
            second: await visible_organization(session, principal, second, for_update=True),
        }
        survivor, other = locked[org_id], locked[request.other_id]
        check_version(wanted, survivor.version)
        if other.version != request.other_version:
            raise Conflict(
                "The other organization was changed since you read it; read it again.",
                current_version=other.version,
            )
        writable_directions(principal, {*survivor.directions, *other.directions})
        try:
            merged = merge_fields(survivor, other, request.take, request.values)
        except PatchRejected as exc:
            raise invalid(exc.errors) from None
        writable_directions(principal, moved_directions(survivor.directions, merged.directions))
        changes = changes_between(survivor, merged)
        version = survivor.version + 1
        await session.execute(
            update(organizations)
            .where(organizations.c.id == org_id)
            .values(
                **storage_values(merged),
                version=version,
                updated_by=principal.subject,
                updated_at=func.now(),
            )
        )
        other_version = other.version + 1
        await session.execute(
            update(organizations)
            .where(organizations.c.id == other.id)
            .values(merged_into=org_id, **soft_delete_values(principal, other_version))
        )
        moved_employments = (
            await session.execute(
                update(employments)
                .where(employments.c.organization_id == other.id)
                .values(
                    organization_id=org_id,
                    version=employments.c.version + 1,
                    updated_by=principal.subject,
                    updated_at=func.now(),
                )
            )
        ).rowcount  # type: ignore[attr-defined]  # a CursorResult for DML
        members = organization_list_members
        moved_members = (
            await session.execute(
                pg_insert(members)
                .from_select(
                    ["list_id", "organization_id", "added_by"],
                    select(members.c.list_id, literal(org_id), members.c.added_by).where(
                        members.c.organization_id == other.id
                    ),
                )
                .on_conflict_do_nothing()
            )
        ).rowcount  # type: ignore[attr-defined]  # a CursorResult for DML
        await session.execute(delete(members).where(members.c.organization_id == other.id))
        moved_entries = (
            await session.execute(
                update(unwanted_register)
                .where(unwanted_register.c.organization_id == other.id)
                .values(organization_id=org_id)
            )
        ).rowcount  # type: ignore[attr-defined]  # a CursorResult for DML
        org = await load_organization(session, org_id)
        gone = await load_organization(session, other.id)
        assert org is not None
        assert gone is not None
        moved = {
            "employments": moved_employments,
            "list_memberships": moved_members,
            "register_entries": moved_entries,
        }
        await audit(
            session,
            principal,
            kind="organization",
            entity_id=org_id,
            action="merged",
            version=version,
            changes=changes,
            note=f"merged {other.id} into this ({moved})",
        )
        await audit(
            session,
            principal,
            kind="organization",
            entity_id=other.id,
            action="merged_into",
            version=other_version,
            changes={"merged_into": {"old": None, "new": str(org_id)}},
            note=f"merged into {org_id}",
        )
        actor = actor_of(principal)
        if changes:
            await runtime.outbox.add(
                session,
                organization_updated(
                    runtime.outbox, org, changes, actor, previous_directions=survivor.directions
                ),
            )
        await runtime.outbox.add(session, organization_deleted(runtime.outbox, gone, actor))
        await runtime.outbox.add(
            session, organization_merged(runtime.outbox, org, gone, changes, actor)
        )
        await announce_organization(session, runtime, principal, org, was_blocked=survivor.blocked)
    response.headers["ETag"] = etag(org.version)
    return MergeResult(
        survivor=org,
        merged_id=other.id,
        employments_moved=moved_employments,
        list_memberships_moved=moved_members,
        register_entries_moved=moved_entries,
    )
