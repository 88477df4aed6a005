"""The directory's state topics (ADR 18): the full snapshot of every record a change touches."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from clientele_shared.events.catalog import ORGANIZATIONS
from clientele_shared.events.envelope import Envelope
from clientele_shared.events.outbox import Outbox
from clientele_shared.events.schemas.directory import OrganizationState
from clientele_shared.events.state import StateSource, next_revision
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.api.blocking import organization_blocked_expr
from clientele_directory.domain.common import STORED
from clientele_directory.domain.organizations import Organization
from clientele_directory.store import organizations


def changed_organizations(envelope: Envelope) -> list[str]:
    """The organizations an event of the organizations topic changes (a merge: both)."""
    payload = envelope.payload
    if envelope.type == "directory.organization.merged":
        return [payload["survivor_id"], payload["merged_id"]]
    found = payload.get("organization_id")
    return [found] if found else []


def organization_state(outbox: Outbox, org: Organization, revision: int) -> Envelope:
    return outbox.envelope(
        "directory.organization.state",
        OrganizationState(
            organization_id=org.id,
            version=org.version,
            revision=revision,
            **org.fields(),
            attributes=org.attributes,
            blocked=org.blocked,
            deleted=org.deleted_at is not None,
            merged_into=org.merged_into,
            created_at=org.created_at,
            updated_at=org.updated_at,
        ),
        aggregate_id=str(org.id),
        directions=org.directions,
    )


class OrganizationSnapshots:
    """Reads organizations for their state records, in the transaction of the change."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def __call__(self, session: AsyncSession, ids: Sequence[str]) -> list[Envelope]:
        wanted = sorted({uuid.UUID(str(value)) for value in ids})
        # Lock first (in id order), then number: two transactions snapshotting one organization
        # take revisions in the order they commit, and the second reads what the first wrote.
        await session.execute(
            select(organizations.c.id)
            .where(organizations.c.id.in_(wanted))
            .order_by(organizations.c.id)
            .with_for_update(key_share=True)
        )
        rows = (
            await session.execute(
                select(
                    organizations,
                    organization_blocked_expr().label("blocked"),
                    next_revision().label("revision"),
                )
                .where(organizations.c.id.in_(wanted))
                .order_by(organizations.c.id)
            )
        ).all()
        return [
            organization_state(
                self.outbox,
                Organization.model_validate(row, from_attributes=True, context=STORED),
                row.revision,
            )
            for row in rows
        ]


def organization_source(outbox: Outbox) -> StateSource:
    return StateSource(ORGANIZATIONS, changed_organizations, OrganizationSnapshots(outbox))
