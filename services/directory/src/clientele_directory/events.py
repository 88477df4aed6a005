"""Envelopes of the events the directory publishes (staged through the outbox by the API).

Envelope ``directions`` are the subject's directions; when a change moves an organization between
directions, the event carries both the old and the new ones, so a subscriber filtering by
direction also learns that a record left its view. ``aggregate_id`` is the entity's id.
"""

from __future__ import annotations

from typing import Any

from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.events.outbox import Outbox
from clientele_shared.events.schemas.base import FieldChange
from clientele_shared.events.schemas.directory import (
    OrganizationBlocked,
    OrganizationCreated,
    OrganizationDeleted,
    OrganizationRestored,
    OrganizationUnblocked,
    OrganizationUpdated,
    RegisterBasis,
)

from clientele_directory.domain.organizations import Organization


def organization_created(outbox: Outbox, org: Organization, actor: Actor) -> Envelope:
    fields = org.fields()
    return outbox.envelope(
        "directory.organization.created",
        OrganizationCreated(
            organization_id=org.id,
            legal_name=org.legal_name,
            short_name=org.short_name,
            inn=org.inn,
            status=org.status.value,
            directions=org.directions,
            version=org.version,
            country=org.country,
            kpp=org.kpp,
            ogrn=org.ogrn,
            phones=fields["phones"],
            emails=org.emails,
            sites=org.sites,
            industry=org.industry,
            categories=org.categories,
            tags=org.tags,
            responsible_employee_id=org.responsible_employee_id,
            blocked=org.blocked,
        ),
        aggregate_id=str(org.id),
        directions=org.directions,
        actor=actor,
    )


def organization_updated(
    outbox: Outbox,
    org: Organization,
    changes: dict[str, Any],
    actor: Actor,
    *,
    previous_directions: list[str],
) -> Envelope:
    return outbox.envelope(
        "directory.organization.updated",
        OrganizationUpdated(
            organization_id=org.id,
            version=org.version,
            changes={name: FieldChange(**change) for name, change in changes.items()},
            blocked=org.blocked,
        ),
        aggregate_id=str(org.id),
        directions=sorted({*org.directions, *previous_directions}),
        actor=actor,
    )


def organization_deleted(outbox: Outbox, org: Organization, actor: Actor) -> Envelope:
    return outbox.envelope(
        "directory.organization.deleted",
        OrganizationDeleted(organization_id=org.id, version=org.version, blocked=org.blocked),
        aggregate_id=str(org.id),
        directions=org.directions,
        actor=actor,
    )


def organization_restored(outbox: Outbox, org: Organization, actor: Actor) -> Envelope:
    return outbox.envelope(
        "directory.organization.restored",
        OrganizationRestored(organization_id=org.id, version=org.version, blocked=org.blocked),
        aggregate_id=str(org.id),
        directions=org.directions,
        actor=actor,
    )


def organization_blocked(
    outbox: Outbox,
    org: Organization,
    actor: Actor,
    *,
    entry_id: Any,
    basis: RegisterBasis,
    reason: str,
    decided_by: str,
) -> Envelope:
    return outbox.envelope(
        "directory.organization.blocked",
        OrganizationBlocked(
            organization_id=org.id,
            entry_id=entry_id,
            basis=basis,
            reason=reason,
            decided_by=decided_by,
        ),
        aggregate_id=str(org.id),
        directions=org.directions,
        actor=actor,
    )


def organization_unblocked(
    outbox: Outbox, org: Organization, actor: Actor, *, entry_id: Any = None
) -> Envelope:
    return outbox.envelope(
        "directory.organization.unblocked",
        OrganizationUnblocked(organization_id=org.id, entry_id=entry_id),
        aggregate_id=str(org.id),
        directions=org.directions,
        actor=actor,
    )
