"""Hand-over: an employee's open planned contacts move to another, for one client or in bulk."""

from __future__ import annotations

import uuid
from datetime import timedelta

from clientele_shared.events.schemas.interactions import ResponsibilityHandedOver
from fastapi import APIRouter, Response, status
from sqlalchemy import insert, select

from clientele_interactions.api.common import ClockDep, Manager, Runtime, Settings
from clientele_interactions.domain.cards import ClientCard
from clientele_interactions.domain.model import Handover, HandoverRequest, Interaction
from clientele_interactions.operations import (
    actor_of,
    audit,
    bump_summary,
    check_employee,
    update_interaction,
    visible_clients,
    writable_card,
)
from clientele_interactions.publishing import Publisher
from clientele_interactions.store import client_cards, handovers, interactions

router = APIRouter(prefix="/v1/handovers", tags=["hand-over"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def hand_over(
    request: HandoverRequest,
    principal: Manager,
    runtime: Runtime,
    settings: Settings,
    clock: ClockDep,
    response: Response,
) -> Handover:
    """Move every open planned contact of ``from_employee_id`` to ``to_employee_id`` (heads of
    sales, admins). With ``organization_id``: that client's only (404/403 as for writing about
    it); without: all clients the caller may see. Each contact gets a new version, an audit
    entry and an ``interaction.handed_over`` event, and its reminder goes to the new employee;
    each client an ``interactions.responsibility.handed_over`` event. History stays intact:
    done and cancelled contacts keep who was responsible. ``to_employee_id`` must be an active
    employee of a direction the caller sees (422 otherwise, the same for an unknown one)."""
    now = clock.now()
    actor = actor_of(principal)
    lead = timedelta(minutes=settings.reminder_lead_minutes)
    handover_id = uuid.uuid4()
    async with runtime.sessions() as session, session.begin():
        client: ClientCard | None = None  # a merged organization's survivor
        if request.organization_id is not None:
            client = await writable_card(session, principal, request.organization_id)
        await check_employee(session, principal, request.to_employee_id, field="to_employee_id")
        client_id = client.organization_id if client else None
        stmt = (
            select(
                interactions,
                *[c.label(f"card_{c.name}") for c in client_cards.c],
            )
            .join(client_cards, client_cards.c.organization_id == interactions.c.organization_id)
            .where(
                interactions.c.status == "planned",
                interactions.c.responsible_employee_id == request.from_employee_id,
                visible_clients(principal),
            )
            .order_by(interactions.c.due_at, interactions.c.id)
            .with_for_update(of=interactions)
        )
        if client_id is not None:
            stmt = stmt.where(interactions.c.organization_id == client_id)
        rows = (await session.execute(stmt)).all()
        moved: list[uuid.UUID] = []
        per_client: dict[uuid.UUID, int] = {}
        cards: dict[uuid.UUID, ClientCard] = {}
        for row in rows:
            data = row._mapping
            card = ClientCard.model_validate(
                {c.name: data[f"card_{c.name}"] for c in client_cards.c}
            )
            current = Interaction.model_validate(dict(data))
            updated = await update_interaction(
                session,
                current,
                {"responsible_employee_id": request.to_employee_id},
                updated_by=principal.subject,
            )
            await audit(
                session,
                actor,
                interaction_id=updated.id,
                action="handed_over",
                version=updated.version,
                changes={
                    "responsible_employee_id": {
                        "old": str(request.from_employee_id),
                        "new": str(request.to_employee_id),
                    }
                },
                note=f"hand-over {handover_id}" + (f": {request.reason}" if request.reason else ""),
            )
            publisher = Publisher(runtime.outbox, card.directions, actor)
            await runtime.outbox.add(
                session,
                publisher.handed_over(
                    updated, handover_id, request.from_employee_id, request.to_employee_id
                ),
            )
            await runtime.outbox.add(
                session,
                publisher.reminder(
                    updated, lead=lead, now=now, client_name=card.short_name or card.legal_name
                ),
            )
            moved.append(updated.id)
            per_client[card.organization_id] = per_client.get(card.organization_id, 0) + 1
            cards[card.organization_id] = card
        if client is not None and client.organization_id not in per_client:
            per_client[client.organization_id] = 0
            cards[client.organization_id] = client
        for organization_id, count in per_client.items():
            publisher = Publisher(runtime.outbox, cards[organization_id].directions, actor)
            await runtime.outbox.add(
                session,
                publisher.responsibility_handed_over(
                    ResponsibilityHandedOver(
                        handover_id=handover_id,
                        organization_id=organization_id,
                        from_employee_id=request.from_employee_id,
                        to_employee_id=request.to_employee_id,
                        interactions_moved=count,
                        reason=request.reason,
                    )
                ),
            )
            await bump_summary(session, organization_id)
        row = (
            await session.execute(
                insert(handovers)
                .values(
                    id=handover_id,
                    from_employee_id=request.from_employee_id,
                    to_employee_id=request.to_employee_id,
                    organization_id=client_id,
                    reason=request.reason,
                    interactions_moved=len(moved),
                    organizations=sorted(per_client),
                    created_by=principal.subject,
                )
                .returning(handovers)
            )
        ).one()
    response.headers["Location"] = f"/v1/handovers/{handover_id}"
    return Handover.model_validate({**row._mapping, "interaction_ids": moved})
