"""Merging two organizations: the survivor keeps the chosen values and takes the other's
employments, list memberships, register entries and the attribute references to it; the other
is soft-deleted pointing to it. What persons share with it lives in ``merging``."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from clientele_shared.auth.access import visible_to, writable_directions
from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.http.concurrency import IfMatch, etag, required_versions
from clientele_shared.runtime import CurrentRuntime
from clientele_shared.service_layer import actor_of
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel
from sqlalchemy import Text, delete, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from clientele_directory.api.blocking import announce_organization
from clientele_directory.api.common import legacy_work
from clientele_directory.api.imports import (
    MATCHING_IDS,
    NAME_SIMILARITY,
    SIMILAR_WITH_INN,
    SIMILAR_WITHOUT_INN,
)
from clientele_directory.api.merging import (
    MergeRequest,
    lock_employments,
    mark_merged,
    merge_pair,
    move_register_entries,
    retarget_references,
)
from clientele_directory.attributes.rules import EntityKind
from clientele_directory.organizations.queries import organization_select
from clientele_directory.organizations.rules import (
    Organization,
    OrganizationDuplicate,
    changes_between,
    merge_fields,
    moved_directions,
    organization_duplicate,
    storage_values,
)
from clientele_directory.organizations.service import load_organization, visible_organization
from clientele_directory.publishing import (
    organization_deleted,
    organization_merged,
    organization_updated,
)
from clientele_directory.tables import employments, organization_list_members, organizations
from clientele_directory.values import STORED

router = APIRouter(prefix="/v1/organizations", tags=["organizations"])
NAME_SCAN = 50
"""The most similar names a candidate search takes (among the organizations the caller sees)."""


class MergeResult(BaseModel):
    survivor: Organization
    merged_id: uuid.UUID
    employments_moved: int
    list_memberships_moved: int
    register_entries_moved: int
    references_moved: int


@router.post("/{org_id}/merge")
async def merge_organizations(
    org_id: uuid.UUID,
    request: MergeRequest,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> MergeResult:
    """Merge ``other_id`` into this organization (the survivor, If-Match with its ETag).

    By default the survivor's values stay, its empty fields are filled and list fields united
    (``take`` and ``values`` choose otherwise). Both must be visible (404) and the caller must
    belong to every direction of both (403); an organization already merged is a 409. Employments,
    static list memberships, register entries and custom attributes referring to the other move
    to the survivor; the other is soft-deleted with ``merged_into``; both are audited;
    ``directory.organization.merged`` tells other services to re-point references.
    """
    wanted = required_versions(if_match)
    async with runtime.sessions() as session, session.begin():

        async def load(record_id: uuid.UUID) -> Organization:
            return await visible_organization(
                session, principal, record_id, for_update=True, deleted=None
            )

        survivor, other, merged = await merge_pair(
            session,
            principal,
            org_id,
            request,
            wanted,
            load,
            merge_fields,
            kind=EntityKind.ORGANIZATION,
            noun="organization",
            not_found="No such organization.",
        )
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
        await lock_employments(session, employments.c.organization_id, [other.id])
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
        moved_entries = await move_register_entries(
            session, principal, "organization_id", org_id, other.id
        )
        moved_references = await retarget_references(
            session, runtime, principal, EntityKind.ORGANIZATION, org_id, other.id
        )
        await mark_merged(
            session,
            principal,
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
        org = await load_organization(session, org_id)
        gone = await load_organization(session, other.id)
        assert org is not None
        assert gone is not None
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
        async with legacy_work(session, runtime, principal) as uow:
            await announce_organization(uow, org, was_blocked=survivor.blocked)
    response.headers["ETag"] = etag(org.version)
    return MergeResult(
        survivor=org,
        merged_id=other.id,
        employments_moved=moved_employments,
        list_memberships_moved=moved_members,
        register_entries_moved=moved_entries,
        references_moved=moved_references,
    )


# --- duplicate candidates --------------------------------------------------------------------


@router.get("/{org_id}/duplicates")
async def organization_duplicates(
    org_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> list[OrganizationDuplicate]:
    """Organizations that may be this one (live, and visible to the caller: nobody else's are
    shown or counted), best first: the same INN, a shared e-mail, a shared phone, a similar
    name without its legal form (trigram similarity ≥ 0.5; two INNs are two companies, so an
    organization with an INN is compared by name only with those without one). The import's
    look-ups, for one organization. 404 for an organization the caller may not see."""
    async with runtime.sessions() as session, session.begin():
        target = await visible_organization(session, principal, org_id)

        async def matching(**values: list[str]) -> set[uuid.UUID]:
            if not any(values.values()):
                return set()
            params = {"inns": [], "emails": [], "phones": [], **values}
            return set(await session.scalars(MATCHING_IDS, params))

        by_inn = await matching(inns=[target.inn] if target.inn else [])
        by_email = await matching(emails=sorted(set(target.emails)))
        by_phone = await matching(phones=sorted({phone.number for phone in target.phones}))
        await session.execute(
            select(func.set_config("pg_trgm.similarity_threshold", str(NAME_SIMILARITY), True))
        )
        params: dict[str, Any] = {
            "nums": [0],
            "positions": [1],
            "names": [target.legal_name],
            "created": [org_id],  # the organization itself comes first: never its own candidate
            "threshold": NAME_SIMILARITY,
            "limit": NAME_SCAN,
            "all": principal.sees_all_directions,
            "dirs": sorted(principal.directions),
        }
        similar = SIMILAR_WITH_INN if target.inn else SIMILAR_WITHOUT_INN
        by_name = {row.id for row in await session.execute(similar, params)}
        found = (by_inn | by_email | by_phone | by_name) - {org_id}
        if not found:
            return []
        name = func.directory_name_key(literal(target.legal_name, Text))
        similarity = func.coalesce(func.similarity(organizations.c.name_key, name), 0.0)
        rows = (
            await session.execute(
                organization_select()
                .add_columns(similarity.label("name_similarity"))
                .where(
                    organizations.c.id.in_(found),
                    organizations.c.deleted_at.is_(None),
                    visible_to(principal, organizations.c.directions),
                )
            )
        ).all()
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
