"""SQL of the contact log: interactions, their participants and references, the audit trail.

Every function works in the caller's session and transaction; other features (hand-over,
unmatched addresses, e-mail capture, the client read models) write interactions through them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from clientele_shared.auth.access import ensure_visible
from clientele_shared.auth.principal import Principal
from clientele_shared.events.envelope import Actor
from clientele_shared.http.problems import Conflict, NotFound
from clientele_shared.observability import current_correlation_id
from sqlalchemy import Row, and_, any_, func, insert, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from clientele_interactions.clients.rules import ClientCard
from clientele_interactions.log.rules import Rejected, Results
from clientele_interactions.log.schemas import AuditEntry, Interaction
from clientele_interactions.results.rules import ResultDefinition
from clientele_interactions.tables import (
    campaigns,
    client_cards,
    client_deals,
    employees,
    interaction_audit,
    interaction_results,
    interactions,
    persons,
    summary_generations,
)
from clientele_interactions.visibility import (
    ensure_writable,
    live_cards,
    load_card,
    visible_clients,
)

NO_INTERACTION = "No such interaction."
SERVICE_ACTOR = Actor(subject="interactions", kind="service")


async def lock_participants(
    session: AsyncSession, interaction_id: uuid.UUID, *more: Sequence[uuid.UUID] | None
) -> None:
    """Take FOR KEY SHARE on the persons an interaction's change may name (its participants and
    ``more``) before the interaction itself is locked: a person merge locks the person first and
    then the interactions, so this order keeps the two from deadlocking."""
    current = await session.scalar(
        select(interactions.c.person_ids).where(interactions.c.id == interaction_id)
    )
    wanted = {*(current or []), *(p for ids in more if ids for p in ids)}
    if wanted:
        await session.execute(
            select(persons.c.person_id)
            .where(persons.c.person_id.in_(wanted))
            .with_for_update(read=True, key_share=True)
        )


async def resolve_persons(
    session: AsyncSession,
    principal: Principal,
    person_ids: Sequence[uuid.UUID],
    *,
    field: str,
) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """The participants as they are now: a merged person becomes its survivor (order kept, no
    duplicates), and which of them are blocked.

    A reference is checked: a person this service does not know, or one of directions the
    caller cannot see (also when merged, deleted or blocked), is the same 422 (``field``), so
    the answer tells nothing of other directions; a visible person deleted in the directory is
    refused as deleted. A person created a moment ago may not be known yet: retry shortly.
    """
    if not person_ids:
        return [], []
    columns = (
        persons.c.person_id,
        persons.c.merged_into,
        persons.c.deleted,
        persons.c.blocked,
        persons.c.directions,
    )
    rows = {
        row.person_id: row
        for row in (
            await session.execute(
                select(*columns)
                .where(persons.c.person_id.in_(list(person_ids)))
                # a merge of one of them (FOR UPDATE) waits for this transaction, and it for it
                .with_for_update(read=True, key_share=True)
            )
        ).all()
    }
    survivors = {r.merged_into for r in rows.values() if r.merged_into is not None}
    if survivors - rows.keys():
        extra = await session.execute(
            select(*columns).where(persons.c.person_id.in_(list(survivors - rows.keys())))
        )
        rows.update({row.person_id: row for row in extra.all()})

    def seen(person_id: uuid.UUID | None) -> Any:
        row = rows.get(person_id) if person_id is not None else None
        return row if row is not None and principal.can_see(row.directions) else None

    resolved: list[uuid.UUID] = []
    blocked: list[uuid.UUID] = []
    for requested in person_ids:
        row = seen(requested)
        if row is not None and row.merged_into is not None:
            row = seen(row.merged_into)
        if row is None:
            raise Rejected.field(field, f"no such person: {requested}")
        if row.deleted:
            raise Rejected.field(field, f"the person {requested} was deleted in the directory")
        if row.person_id in resolved:
            continue
        resolved.append(row.person_id)
        if row.blocked:
            blocked.append(row.person_id)
    return resolved, blocked


async def check_employee(
    session: AsyncSession, principal: Principal, employee_id: uuid.UUID, *, field: str
) -> None:
    """An employee named as responsible (or taking over) must be known here, active and of a
    direction the caller sees: an unknown one and one of other directions are the same 422
    (``field``), so the answer tells nothing of other directions."""
    row = (
        await session.execute(
            select(employees.c.directions, employees.c.active).where(
                employees.c.employee_id == employee_id
            )
        )
    ).first()
    if row is None or not principal.can_see(row.directions):
        raise Rejected.field(field, f"no such employee: {employee_id}")
    if not row.active:
        raise Rejected.field(field, f"the employee {employee_id} is not active")


async def check_deal(
    session: AsyncSession,
    principal: Principal,
    deal_id: uuid.UUID,
    card: ClientCard,
    *,
    field: str = "deal_id",
) -> None:
    """A deal an interaction refers to must be known here (the pipeline's deal events), not
    deleted, visible to the caller and one of the interaction's client (or of a client merged
    into it); otherwise one 422 (``field``) whatever the reason."""
    row = (
        await session.execute(
            select(
                client_deals.c.organization_id, client_deals.c.directions, client_deals.c.status
            ).where(client_deals.c.deal_id == deal_id)
        )
    ).first()
    if row is None or row.status == "deleted" or not principal.can_see(row.directions):
        raise Rejected.field(field, f"no such deal: {deal_id}")
    if row.organization_id != card.organization_id:
        merged_into = await session.scalar(
            select(client_cards.c.merged_into).where(
                client_cards.c.organization_id == row.organization_id
            )
        )
        if merged_into != card.organization_id:
            raise Rejected.field(field, f"the deal {deal_id} is not one of this client")


async def check_campaign(
    session: AsyncSession,
    principal: Principal,
    campaign_id: uuid.UUID,
    *,
    field: str = "campaign_id",
) -> None:
    """A marketing event an interaction refers to must be known here (the campaigns service's
    events), not deleted and visible to the caller; otherwise one 422 (``field``)."""
    row = (
        await session.execute(
            select(campaigns.c.directions, campaigns.c.deleted).where(
                campaigns.c.campaign_id == campaign_id
            )
        )
    ).first()
    if row is None or row.deleted or not principal.can_see(row.directions):
        raise Rejected.field(field, f"no such campaign: {campaign_id}")


async def check_references(
    session: AsyncSession,
    principal: Principal,
    card: ClientCard,
    values: Mapping[str, Any],
    *,
    prefix: str = "",
) -> None:
    """Check the employee, deal and campaign ``values`` name (those present and not null)."""
    if (employee_id := values.get("responsible_employee_id")) is not None:
        field = f"{prefix}responsible_employee_id"
        await check_employee(session, principal, employee_id, field=field)
    if (deal_id := values.get("deal_id")) is not None:
        await check_deal(session, principal, deal_id, card, field=f"{prefix}deal_id")
    if (campaign_id := values.get("campaign_id")) is not None:
        await check_campaign(session, principal, campaign_id, field=f"{prefix}campaign_id")


async def blocked_among(session: AsyncSession, person_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """Which of these persons are in the unwanted counterparty register (in their order)."""
    if not person_ids:
        return []
    found = set(
        (
            await session.scalars(
                select(persons.c.person_id).where(
                    persons.c.person_id.in_(list(person_ids)), persons.c.blocked
                )
            )
        ).all()
    )
    return [person_id for person_id in person_ids if person_id in found]


async def load_results(session: AsyncSession) -> Results:
    rows = (await session.execute(select(interaction_results))).all()
    return {
        (row.kind, row.code): ResultDefinition.model_validate(row, from_attributes=True)
        for row in rows
    }


def _interaction_columns() -> list[Any]:
    return [column for column in interactions.c if column.name != "message_id"]


async def load_interaction(
    session: AsyncSession, interaction_id: uuid.UUID, *, for_update: bool = False
) -> tuple[Interaction, ClientCard] | None:
    """One interaction with its client card (None when either is unknown or the client was
    deleted), optionally locked for the transaction: the card first (FOR KEY SHARE), then the
    interaction (FOR UPDATE), the order a merge of the client takes them in."""
    if not for_update:
        row = (
            await session.execute(
                select(
                    *_interaction_columns(), *[c.label(f"card_{c.name}") for c in client_cards.c]
                )
                .join(
                    client_cards, client_cards.c.organization_id == interactions.c.organization_id
                )
                .where(interactions.c.id == interaction_id, live_cards())
            )
        ).first()
        if row is None:
            return None
        data = row._mapping
        card = ClientCard.model_validate({c.name: data[f"card_{c.name}"] for c in client_cards.c})
        return Interaction.model_validate(dict(data)), card
    organization_id = await session.scalar(
        select(interactions.c.organization_id).where(interactions.c.id == interaction_id)
    )
    for _ in range(3):  # a merge committed in between moves the interaction: follow it
        if organization_id is None:
            return None
        locked_card = await load_card(session, organization_id, lock=True)
        if locked_card is None:
            return None
        locked = (
            await session.execute(
                select(*_interaction_columns())
                .where(interactions.c.id == interaction_id)
                .with_for_update()
            )
        ).first()
        if locked is None:
            return None
        if locked.organization_id == locked_card.organization_id:
            return Interaction.model_validate(locked, from_attributes=True), locked_card
        organization_id = locked.organization_id
    raise Conflict("The client of this interaction is being merged; try again.")


async def visible_interaction(
    session: AsyncSession,
    principal: Principal,
    interaction_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> tuple[Interaction, ClientCard]:
    found = await load_interaction(session, interaction_id, for_update=for_update)
    if found is None:
        raise NotFound(NO_INTERACTION)
    ensure_visible(principal, found[1].directions, NO_INTERACTION)
    return found


async def writable_interaction(
    session: AsyncSession, principal: Principal, interaction_id: uuid.UUID
) -> tuple[Interaction, ClientCard]:
    found = await visible_interaction(session, principal, interaction_id, for_update=True)
    ensure_writable(principal, found[1])
    return found


async def insert_interaction(
    session: AsyncSession,
    values: Mapping[str, Any],
    *,
    created_by: str,
    source: str = "api",
    message_id: str | None = None,
) -> Interaction:
    interaction_id = uuid.uuid4()
    row = (
        await session.execute(
            insert(interactions)
            .values(
                id=interaction_id,
                **values,
                source=source,
                message_id=message_id,
                version=1,
                created_by=created_by,
                updated_by=created_by,
            )
            .returning(*_interaction_columns())
        )
    ).one()
    return Interaction.model_validate(row, from_attributes=True)


async def update_interaction(
    session: AsyncSession,
    current: Interaction,
    values: Mapping[str, Any],
    *,
    updated_by: str,
) -> Interaction:
    """Write ``values`` as the next version of ``current`` (locked by the caller)."""
    row = (
        await session.execute(
            interactions.update()
            .where(interactions.c.id == current.id)
            .values(
                **values,
                version=current.version + 1,
                updated_by=updated_by,
                updated_at=func.now(),
            )
            .returning(*_interaction_columns())
        )
    ).one()
    return Interaction.model_validate(row, from_attributes=True)


async def move_interactions(
    session: AsyncSession,
    actor: Actor,
    *,
    where: ColumnElement[bool],
    values: Mapping[str, Any],
    action: str,
    changes: Mapping[str, Any],
    note: str,
) -> list[Interaction]:
    """Rewrite every interaction matching ``where`` (a merge in the directory re-points them):
    each gets a new version and one audit entry with ``changes``; the rewritten ones answered."""
    rows = (
        await session.execute(
            interactions.update()
            .where(where)
            .values(
                **values,
                version=interactions.c.version + 1,
                updated_by=actor.subject,
                updated_at=func.now(),
            )
            .returning(*_interaction_columns())
        )
    ).all()
    moved = [Interaction.model_validate(row, from_attributes=True) for row in rows]
    if moved:
        correlation_id = current_correlation_id()
        await session.execute(
            insert(interaction_audit),
            [
                {
                    "interaction_id": item.id,
                    "version": item.version,
                    "action": action,
                    "actor_subject": actor.subject,
                    "actor_kind": actor.kind,
                    "correlation_id": correlation_id,
                    "changes": dict(changes),
                    "note": note[:500],
                }
                for item in moved
            ],
        )
    return moved


async def bump_summary(session: AsyncSession, organization_id: uuid.UUID) -> None:
    """Invalidate the client's cached summary, in the transaction of the change it shows."""
    stmt = pg_insert(summary_generations).values(organization_id=organization_id, generation=1)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[summary_generations.c.organization_id],
            set_={"generation": summary_generations.c.generation + 1},
        )
    )


async def list_interactions(
    session: AsyncSession,
    principal: Principal,
    *,
    organization_id: uuid.UUID | None,
    status: str | None,
    kind: str | None,
    responsible_employee_id: uuid.UUID | None,
    overdue: bool | None,
    since: datetime | None,
    until: datetime | None,
    order: str,
    limit: int,
    offset: int,
    now: datetime,
) -> list[Row[Any]]:
    """Interactions at the clients ``principal`` sees (``organization_id`` already resolved to a
    survivor), each with ``client_blocked`` and ``blocked_person_ids``."""
    when = func.coalesce(interactions.c.occurred_at, interactions.c.due_at)
    blocked_people = (
        select(func.array_agg(persons.c.person_id))
        .where(persons.c.person_id == any_(interactions.c.person_ids), persons.c.blocked)
        .scalar_subquery()
    )
    stmt = (
        select(
            interactions,
            client_cards.c.blocked.label("client_blocked"),
            blocked_people.label("blocked_person_ids"),
        )
        .join(client_cards, client_cards.c.organization_id == interactions.c.organization_id)
        .where(visible_clients(principal))
    )
    if organization_id is not None:
        stmt = stmt.where(interactions.c.organization_id == organization_id)
    if status is not None:
        stmt = stmt.where(interactions.c.status == status)
    if kind is not None:
        stmt = stmt.where(interactions.c.kind == kind)
    if responsible_employee_id is not None:
        stmt = stmt.where(interactions.c.responsible_employee_id == responsible_employee_id)
    if overdue is not None:
        past_due = and_(
            interactions.c.status == "planned",
            or_(interactions.c.overdue_at.is_not(None), interactions.c.due_at <= now),
        )
        stmt = stmt.where(past_due if overdue else ~past_due)
    if since is not None:
        stmt = stmt.where(when >= since)
    if until is not None:
        stmt = stmt.where(when < until)
    ordering = (
        (when.desc(), interactions.c.id) if order == "recent" else (when.asc(), interactions.c.id)
    )
    result: Any = await session.execute(stmt.order_by(*ordering).limit(limit).offset(offset))
    return list(result.all())


async def audit_entries(
    session: AsyncSession, interaction_id: uuid.UUID, *, after: int, limit: int
) -> list[AuditEntry]:
    rows = (
        await session.execute(
            select(interaction_audit)
            .where(
                interaction_audit.c.interaction_id == interaction_id,
                interaction_audit.c.id > after,
            )
            .order_by(interaction_audit.c.id)
            .limit(limit)
        )
    ).all()
    return [AuditEntry.model_validate(row, from_attributes=True) for row in rows]


async def claim_overdue(session: AsyncSession, now: datetime, batch: int) -> list[Row[Any]]:
    """Up to ``batch`` planned contacts past due and not yet marked overdue, locked FOR UPDATE
    SKIP LOCKED (replicas share the work), each with its card's directions and names."""
    result: Any = await session.execute(
        select(
            interactions,
            client_cards.c.directions.label("card_directions"),
            client_cards.c.legal_name.label("card_legal_name"),
            client_cards.c.short_name.label("card_short_name"),
        )
        .join(client_cards, client_cards.c.organization_id == interactions.c.organization_id)
        .where(
            interactions.c.status == "planned",
            interactions.c.overdue_at.is_(None),
            interactions.c.due_at <= now,
            live_cards(),  # a deleted client's contacts wait for its restoration
        )
        .order_by(interactions.c.due_at, interactions.c.id)
        .limit(batch)
        .with_for_update(of=interactions, skip_locked=True)
    )
    return list(result.all())


async def mark_overdue(session: AsyncSession, interaction_id: uuid.UUID, now: datetime) -> None:
    await session.execute(
        interactions.update().where(interactions.c.id == interaction_id).values(overdue_at=now)
    )
