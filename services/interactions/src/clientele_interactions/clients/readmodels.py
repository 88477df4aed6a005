"""Read models fed by other services' events: persons and employments for the summary, the
address book and e-mail matching; deals and marketing events an interaction may refer to.
Every change bumps the summaries it shows in (same transaction), so a cached summary is never
served after its data changed."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from clientele_shared.events.envelope import Envelope
from clientele_shared.events.schemas.campaigns import (
    CampaignChanged,
    CampaignCreated,
    CampaignCreatedV2,
    CampaignDeleted,
    CampaignRestored,
    CampaignRestoredV2,
)
from clientele_shared.events.schemas.directory import (
    EmployeeCreated,
    EmployeeUpdated,
    EmploymentChanged,
    PersonBlocked,
    PersonCreated,
    PersonDeleted,
    PersonMerged,
    PersonRestored,
    PersonUnblocked,
    PersonUpdated,
)
from clientele_shared.events.schemas.erp import ErpDocument
from clientele_shared.events.schemas.pipeline import (
    DealChanged,
    DealCreated,
    DealDeleted,
    DealLost,
    DealRestored,
    DealStageChanged,
    DealWon,
)
from clientele_shared.observability import get_logger
from pydantic import BaseModel
from sqlalchemy import Column, Table, any_, case, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_interactions.clients.rules import (
    deal_changes,
    deal_line,
    employee_changes,
    employee_values,
    employment_values,
    person_changes,
    person_values,
)
from clientele_interactions.log.queries import SERVICE_ACTOR, bump_summary, move_interactions
from clientele_interactions.tables import (
    campaigns,
    client_cards,
    client_deals,
    client_erp_documents,
    employees,
    employments,
    interactions,
    persons,
)

log = get_logger(__name__)


async def _bump_person(session: AsyncSession, person_id: uuid.UUID) -> None:
    organizations = (
        await session.scalars(
            select(employments.c.organization_id)
            .where(employments.c.person_id == person_id)
            .distinct()
        )
    ).all()
    for organization_id in organizations:
        await bump_summary(session, organization_id)


async def _survivor(
    session: AsyncSession, table: Table, key: Column[Any], value: uuid.UUID
) -> uuid.UUID:
    """The record ``value`` was merged into, or ``value`` itself."""
    merged_into = await session.scalar(select(table.c.merged_into).where(key == value))
    return merged_into or value


async def _update_person(
    session: AsyncSession, person_id: uuid.UUID, version: int | None, values: dict[str, Any]
) -> None:
    stmt = update(persons).where(persons.c.person_id == person_id)
    if version is not None:
        stmt = stmt.where(persons.c.version < version).values(version=version)
    await session.execute(stmt.values(**values, updated_at=func.now()))


async def _merge_person(session: AsyncSession, envelope: Envelope, payload: PersonMerged) -> None:
    """The merged person becomes an alias of the survivor: deleted, pointing at it (so do
    persons merged into it before); positions move or fold as the event says; the survivor
    replaces it among the participants of every interaction (a new version and an audit entry
    each)."""
    survivor, merged = payload.survivor_id, payload.merged_id
    locked = await session.scalar(
        select(persons.c.person_id).where(persons.c.person_id == merged).with_for_update()
    )
    if locked is None:  # its creation has not arrived yet: a tombstone keeps the alias
        await session.execute(
            insert(persons)
            .values(person_id=merged, version=payload.merged_version, deleted=True)
            .on_conflict_do_nothing(index_elements=[persons.c.person_id])
        )
    await session.execute(
        update(persons)
        .where(persons.c.person_id == merged)
        .values(
            deleted=True,
            merged_into=survivor,
            version=func.greatest(persons.c.version, payload.merged_version),
            updated_at=func.now(),
        )
    )
    await session.execute(
        update(persons).where(persons.c.merged_into == merged).values(merged_into=survivor)
    )
    survivor_changes = PersonUpdated(
        person_id=survivor,
        version=payload.survivor_version,
        changes=payload.changes,
        blocked=payload.blocked,
    )
    await _update_person(
        session, survivor, payload.survivor_version, person_changes(survivor_changes)
    )
    touched = set(
        (
            await session.scalars(
                select(employments.c.organization_id).where(employments.c.person_id == merged)
            )
        ).all()
    )
    for job in payload.employments:
        values: dict[str, Any] = (
            {"deleted": True} if job.merged_into is not None else {"person_id": survivor}
        )
        await session.execute(
            update(employments)
            .where(employments.c.employment_id == job.employment_id)
            .values(**values)
        )
    await session.execute(  # positions the event did not name (not known to it) follow too
        update(employments)
        .where(employments.c.person_id == merged, ~employments.c.deleted)
        .values(person_id=survivor)
    )
    moved = await move_interactions(
        session,
        envelope.actor or SERVICE_ACTOR,
        where=interactions.c.person_ids.contains([merged]),
        values={
            "person_ids": case(
                (
                    literal(survivor, persons.c.person_id.type) == any_(interactions.c.person_ids),
                    func.array_remove(interactions.c.person_ids, merged),
                ),
                else_=func.array_replace(interactions.c.person_ids, merged, survivor),
            )
        },
        action="person_merged",
        changes={"person_id": {"old": str(merged), "new": str(survivor)}},
        note=f"the directory merged person {merged} into {survivor}",
    )
    touched.update(item.organization_id for item in moved)
    for organization_id in touched:
        await bump_summary(session, organization_id)
    await _bump_person(session, survivor)


async def on_person_event(session: AsyncSession, envelope: Envelope, payload: BaseModel) -> None:
    """Fold a person or employment event; an older version never overwrites a newer one."""
    if isinstance(payload, PersonMerged):
        await _merge_person(session, envelope, payload)
    elif isinstance(payload, PersonCreated):
        values = person_values(payload)
        stmt = insert(persons).values(**values)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[persons.c.person_id],
                set_={k: stmt.excluded[k] for k in values if k != "person_id"},
                where=persons.c.version < stmt.excluded.version,
            )
        )
        await _bump_person(session, payload.person_id)
    elif isinstance(payload, PersonUpdated):
        await _update_person(session, payload.person_id, payload.version, person_changes(payload))
        await _bump_person(session, payload.person_id)
    elif isinstance(payload, PersonDeleted | PersonRestored):
        deleted = isinstance(payload, PersonDeleted)
        flags: dict[str, Any] = {"deleted": deleted}
        if isinstance(payload, PersonRestored):
            flags["blocked"] = payload.blocked
        await _update_person(session, payload.person_id, payload.version, flags)
        await _bump_person(session, payload.person_id)
    elif isinstance(payload, PersonBlocked | PersonUnblocked):
        blocked = isinstance(payload, PersonBlocked)
        await _update_person(session, payload.person_id, None, {"blocked": blocked})
        await _bump_person(session, payload.person_id)
    elif isinstance(payload, EmploymentChanged):
        job = employment_values(payload)
        # an employment event older than a merge it crossed (another topic or partition) lands
        # on the survivor
        job["organization_id"] = await _survivor(
            session, client_cards, client_cards.c.organization_id, job["organization_id"]
        )
        job["person_id"] = await _survivor(session, persons, persons.c.person_id, job["person_id"])
        upsert = insert(employments).values(**job)
        await session.execute(
            upsert.on_conflict_do_update(
                index_elements=[employments.c.employment_id],
                set_={k: upsert.excluded[k] for k in job if k != "employment_id"},
                where=employments.c.version < upsert.excluded.version,
            )
        )
        await bump_summary(session, job["organization_id"])


async def on_employee_event(session: AsyncSession, _: Envelope, payload: BaseModel) -> None:
    """Fold an employee event (other events of the topic, such as directions, are skipped)."""
    if isinstance(payload, EmployeeCreated):
        values = employee_values(payload)
        stmt = insert(employees).values(**values)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[employees.c.employee_id],
                set_={k: stmt.excluded[k] for k in values if k != "employee_id"},
                where=employees.c.version < stmt.excluded.version,
            )
        )
    elif isinstance(payload, EmployeeUpdated):
        await session.execute(
            update(employees)
            .where(
                employees.c.employee_id == payload.employee_id,
                employees.c.version < payload.version,
            )
            .values(**employee_changes(payload), version=payload.version, updated_at=func.now())
        )


async def on_campaign_event(session: AsyncSession, _: Envelope, payload: BaseModel) -> None:
    """Fold a marketing event's own events (participants' events are skipped; ``created`` and
    ``restored`` in either schema version); an older version never overwrites a newer one, a
    change of one never seen is ignored."""
    if isinstance(
        payload, CampaignCreated | CampaignRestored | CampaignCreatedV2 | CampaignRestoredV2
    ):
        values = {
            "campaign_id": payload.campaign_id,
            "title": payload.title[:500],
            "directions": sorted(set(payload.directions)),
            "deleted": False,
            "version": payload.version,
        }
        stmt = insert(campaigns).values(**values)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[campaigns.c.campaign_id],
                set_={k: stmt.excluded[k] for k in values if k != "campaign_id"},
                where=campaigns.c.version < stmt.excluded.version,
            )
        )
        return
    changes: dict[str, Any]
    if isinstance(payload, CampaignDeleted):
        changes = {"deleted": True}
    elif isinstance(payload, CampaignChanged):
        changes = {}
        if "title" in payload.changes:
            changes["title"] = str(payload.changes["title"].new)[:500]
        if "directions" in payload.changes:
            changes["directions"] = sorted(set(payload.changes["directions"].new or []))
    else:
        return
    await session.execute(
        update(campaigns)
        .where(
            campaigns.c.campaign_id == payload.campaign_id,
            campaigns.c.version < payload.version,
        )
        .values(**changes, version=payload.version, updated_at=func.now())
    )


async def on_deal_event(session: AsyncSession, envelope: Envelope, payload: BaseModel) -> None:
    """The client's deals for the summary, from the pipeline's deal events: a snapshot event
    writes the whole line, the others what they carry; an older version never overwrites a
    newer one. A deal of a merged client follows the survivor (the pipeline re-points it and
    says so with a new version)."""
    if isinstance(payload, DealCreated | DealRestored):
        values = deal_line(payload, envelope.occurred_at)
        stmt = insert(client_deals).values(**values)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[client_deals.c.deal_id],
                set_={key: stmt.excluded[key] for key in values if key != "deal_id"},
                where=client_deals.c.version < stmt.excluded.version,
            )
        )
        await bump_summary(session, payload.organization_id)
        return
    if not isinstance(payload, DealChanged | DealStageChanged | DealWon | DealLost | DealDeleted):
        return
    values = deal_changes(payload)
    organization_id = await session.scalar(
        update(client_deals)
        .where(client_deals.c.deal_id == payload.deal_id, client_deals.c.version < payload.version)
        .values(**values, version=payload.version, updated_at=envelope.occurred_at)
        .returning(client_deals.c.organization_id)
    )
    if organization_id is None:
        known = await session.scalar(
            select(client_deals.c.version).where(client_deals.c.deal_id == payload.deal_id)
        )
        if known is None:  # never saw its creation (it predates this consumer): nothing to show
            log.warning("deal event for an unknown deal", deal_id=str(payload.deal_id))
        return
    await bump_summary(session, organization_id)
    if organization_id != payload.organization_id:
        await bump_summary(session, payload.organization_id)


ERP_KINDS = {
    "erp.invoice.issued": ("invoice", "issued"),
    "erp.payment.received": ("payment", "received"),
    "erp.shipment.dispatched": ("shipment", "dispatched"),
}


async def _client_of(session: AsyncSession, document: ErpDocument) -> uuid.UUID | None:
    """The client a document is about: its id, its deal's client, or the one live client with
    its INN; a merged client's survivor."""
    organization_id = document.organization_id
    if organization_id is None and document.deal_id is not None:
        organization_id = await session.scalar(
            select(client_deals.c.organization_id).where(client_deals.c.deal_id == document.deal_id)
        )
    if organization_id is None and document.inn is not None:
        found = (
            await session.scalars(
                select(client_cards.c.organization_id)
                .where(client_cards.c.inn == document.inn, client_cards.c.deleted.is_(False))
                .limit(2)
            )
        ).all()
        organization_id = found[0] if len(found) == 1 else None
    if organization_id is None:
        return None
    survivor = await session.scalar(
        select(client_cards.c.merged_into).where(client_cards.c.organization_id == organization_id)
    )
    return survivor or organization_id


async def on_erp_document(session: AsyncSession, envelope: Envelope, payload: BaseModel) -> None:
    """The ERP's invoices, payments and shipments on the client summary; a document sent again
    with the same id is a correction and replaces the line. One this service cannot place (an
    unknown deal or client, an INN of no or several clients) is logged and left out: the
    pipeline, which owns documents, dead-letters what it cannot attach."""
    if not isinstance(payload, ErpDocument) or envelope.type not in ERP_KINDS:
        return
    organization_id = await _client_of(session, payload)
    if organization_id is None:
        log.warning("ERP document for no known client", document_id=payload.document_id)
        return
    kind, status = ERP_KINDS[envelope.type]
    values = {
        "document_id": payload.document_id,
        "kind": kind,
        "organization_id": organization_id,
        "number": payload.number,
        "issued_on": dt.datetime.combine(payload.date, dt.time(), tzinfo=dt.UTC),
        "amount": payload.amount,
        "currency": payload.currency,
        "status": status,
        "updated_at": envelope.occurred_at,
    }
    stmt = insert(client_erp_documents).values(**values)
    previous = await session.scalar(
        select(client_erp_documents.c.organization_id).where(
            client_erp_documents.c.kind == kind,
            client_erp_documents.c.document_id == payload.document_id,
        )
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[client_erp_documents.c.kind, client_erp_documents.c.document_id],
            set_={key: stmt.excluded[key] for key in values if key not in ("kind", "document_id")},
            where=client_erp_documents.c.updated_at <= stmt.excluded.updated_at,
        )
    )
    await bump_summary(session, organization_id)
    if previous is not None and previous != organization_id:
        await bump_summary(session, previous)
