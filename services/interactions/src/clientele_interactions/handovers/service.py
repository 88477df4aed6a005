"""Hand-over operations: move an employee's open planned contacts to another."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from clientele_shared.auth.principal import Principal
from clientele_shared.events.schemas.interactions import ResponsibilityHandedOver
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import unit_of_work

from clientele_interactions.clients.rules import ClientCard
from clientele_interactions.handovers import queries
from clientele_interactions.handovers.rules import Handover, HandoverRequest
from clientele_interactions.log.queries import bump_summary, check_employee, update_interaction
from clientele_interactions.log.schemas import Interaction
from clientele_interactions.publishing import Publisher
from clientele_interactions.tables import client_cards, interaction_audit
from clientele_interactions.visibility import writable_card


async def hand_over(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    request: HandoverRequest,
    now: datetime,
    reminder_lead: timedelta,
) -> Handover:
    """Move every open planned contact of ``from_employee_id`` to ``to_employee_id``: each gets
    a new version, an audit entry, an ``interaction.handed_over`` event and its reminder for
    the new employee; each client an ``interactions.responsibility.handed_over`` event."""
    handover_id = uuid.uuid4()
    async with unit_of_work(runtime.sessions, runtime.outbox, interaction_audit, principal) as uow:
        session = uow.session
        client: ClientCard | None = None  # a merged organization's survivor
        if request.organization_id is not None:
            client = await writable_card(session, principal, request.organization_id)
        await check_employee(session, principal, request.to_employee_id, field="to_employee_id")
        client_id = client.organization_id if client else None
        rows = await queries.open_planned(session, principal, request.from_employee_id, client_id)
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
            await uow.audit(
                kind="interaction",
                entity_id=updated.id,
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
            publisher = Publisher(runtime.outbox, card.directions, uow.actor)
            uow.stage(
                publisher.handed_over(
                    updated, handover_id, request.from_employee_id, request.to_employee_id
                ),
                publisher.reminder(
                    updated,
                    lead=reminder_lead,
                    now=now,
                    client_name=card.short_name or card.legal_name,
                ),
            )
            moved.append(updated.id)
            per_client[card.organization_id] = per_client.get(card.organization_id, 0) + 1
            cards[card.organization_id] = card
        if client is not None and client.organization_id not in per_client:
            per_client[client.organization_id] = 0
            cards[client.organization_id] = client
        for organization_id, count in per_client.items():
            publisher = Publisher(runtime.outbox, cards[organization_id].directions, uow.actor)
            uow.stage(
                publisher.responsibility_handed_over(
                    ResponsibilityHandedOver(
                        handover_id=handover_id,
                        organization_id=organization_id,
                        from_employee_id=request.from_employee_id,
                        to_employee_id=request.to_employee_id,
                        interactions_moved=count,
                        reason=request.reason,
                    )
                )
            )
            await bump_summary(session, organization_id)
        row = await queries.insert_handover(
            session,
            id=handover_id,
            from_employee_id=request.from_employee_id,
            to_employee_id=request.to_employee_id,
            organization_id=client_id,
            reason=request.reason,
            interactions_moved=len(moved),
            organizations=sorted(per_client),
            created_by=principal.subject,
        )
    return Handover.model_validate({**row._mapping, "interaction_ids": moved})
