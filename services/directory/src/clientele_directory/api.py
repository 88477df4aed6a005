"""Directory HTTP API (organizations; the full directory arrives with its own issue)."""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.access import apply_direction_filter, ensure_visible, writable_directions
from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.events.envelope import Actor
from clientele_shared.http.problems import NotFound
from clientele_shared.runtime import ServiceRuntime, runtime_of
from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.domain import Organization, OrganizationDraft, normalize_directions
from clientele_directory.events import organization_created
from clientele_directory.store import organizations

router = APIRouter(prefix="/v1/organizations", tags=["organizations"])
Runtime = Annotated[ServiceRuntime, Depends(runtime_of)]


def _etag(org: Organization) -> str:
    return f'W/"{org.version}"'


async def _load(session: AsyncSession, org_id: uuid.UUID) -> Organization | None:
    row = (await session.execute(select(organizations).where(organizations.c.id == org_id))).first()
    return Organization.model_validate(row, from_attributes=True) if row else None


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_organization(
    draft: OrganizationDraft, principal: CurrentPrincipal, runtime: Runtime, response: Response
) -> Organization:
    """Register an organization in directions the caller works in."""
    directions = normalize_directions(writable_directions(principal, draft.directions))
    org = Organization(
        **draft.model_dump(exclude={"directions"}),
        directions=directions,
        id=uuid.uuid4(),
        version=1,
    )
    async with runtime.sessions() as session, session.begin():
        await session.execute(
            insert(organizations).values(
                **org.model_dump(mode="python"), created_by=principal.subject
            )
        )
        await runtime.outbox.add(
            session,
            organization_created(
                runtime.outbox, org, Actor(subject=principal.subject, kind=principal.kind)
            ),
        )
    response.headers["ETag"] = _etag(org)
    response.headers["Location"] = f"/v1/organizations/{org.id}"
    return org


@router.get("/{org_id}")
async def get_organization(
    org_id: uuid.UUID, principal: CurrentPrincipal, runtime: Runtime, response: Response
) -> Organization:
    """One organization; 404 when it does not exist or lies outside the caller's directions."""
    async with runtime.sessions() as session:
        org = await _load(session, org_id)
    if org is None:
        raise NotFound("No such organization.")
    ensure_visible(principal, org.directions)
    response.headers["ETag"] = _etag(org)
    return org


@router.get("")
async def list_organizations(
    principal: CurrentPrincipal,
    runtime: Runtime,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[Organization]:
    """Organizations in the caller's directions, by legal name."""
    stmt = apply_direction_filter(
        select(organizations).order_by(organizations.c.legal_name, organizations.c.id).limit(limit),
        principal,
        organizations.c.directions,
    )
    async with runtime.sessions() as session:
        rows = (await session.execute(stmt)).all()
    return [Organization.model_validate(row, from_attributes=True) for row in rows]
