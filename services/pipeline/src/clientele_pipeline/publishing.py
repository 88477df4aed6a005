"""Events out: each outgoing event built from the domain model (staged by the service layer)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.events.outbox import Outbox
from clientele_shared.events.schemas.base import FieldChange
from clientele_shared.events.schemas.pipeline import (
    DEAL_CHANGED,
    DEAL_CREATED,
    DEAL_DELETED,
    DEAL_LOST,
    DEAL_RESTORED,
    DEAL_STAGE_CHANGED,
    DEAL_WON,
    DealChanged,
    DealCreated,
    DealDeleted,
    DealLost,
    DealRestored,
    DealStageChanged,
    DealWon,
)

from clientele_pipeline.deals.rules import Deal
from clientele_pipeline.pipelines.rules import Stage


def _snapshot(deal: Deal, stage: Stage) -> dict[str, Any]:
    values = deal.model_dump(
        mode="json",
        include={
            "version",
            "pipeline_id",
            "stage_id",
            "status",
            "organization_id",
            "title",
            "amount",
            "currency",
            "person_ids",
            "primary_person_id",
            "responsible_employee_id",
            "directions",
            "tags",
            "custom_fields",
            "expected_close_date",
            "source",
            "lost_reason",
            "products",
            "amount_from_products",
        },
    )
    return {**values, "deal_id": str(deal.id), "stage_name": stage.name, "stage_kind": stage.kind}


def deal_created(outbox: Outbox, deal: Deal, stage: Stage, actor: Actor) -> Envelope:
    return outbox.envelope(
        DEAL_CREATED,
        DealCreated.model_validate(_snapshot(deal, stage)),
        aggregate_id=str(deal.id),
        directions=deal.directions,
        actor=actor,
    )


def deal_restored(outbox: Outbox, deal: Deal, stage: Stage, actor: Actor) -> Envelope:
    return outbox.envelope(
        DEAL_RESTORED,
        DealRestored.model_validate(_snapshot(deal, stage)),
        aggregate_id=str(deal.id),
        directions=deal.directions,
        actor=actor,
    )


def deal_changed(
    outbox: Outbox,
    deal: Deal,
    changes: dict[str, dict[str, Any]],
    actor: Actor,
    *,
    previous_directions: Sequence[str] = (),
) -> Envelope:
    """Only the changed fields, old and new; a deal that left directions is announced to the
    old ones too (the union)."""
    payload = DealChanged(
        deal_id=deal.id,
        version=deal.version,
        organization_id=deal.organization_id,
        pipeline_id=deal.pipeline_id,
        changes={name: FieldChange(**change) for name, change in changes.items()},
    )
    return outbox.envelope(
        DEAL_CHANGED,
        payload,
        aggregate_id=str(deal.id),
        directions=sorted({*deal.directions, *previous_directions}),
        actor=actor,
    )


def deal_moved(
    outbox: Outbox,
    deal: Deal,
    *,
    from_stage_id: uuid.UUID,
    stage: Stage,
    reason: str | None,
    moved_at: datetime,
    actor: Actor,
) -> list[Envelope]:
    """The stage change, and the deal's winning or loss when the stage closes it."""
    common = {
        "deal_id": deal.id,
        "version": deal.version,
        "organization_id": deal.organization_id,
        "pipeline_id": deal.pipeline_id,
    }
    money = {"amount": deal.amount, "currency": deal.currency}
    envelopes = [
        outbox.envelope(
            DEAL_STAGE_CHANGED,
            DealStageChanged(
                **common,
                **money,
                from_stage_id=from_stage_id,
                to_stage_id=stage.id,
                stage_name=stage.name,
                stage_kind=stage.kind,
                status=deal.status,
                reason=reason,
                moved_at=moved_at,
                title=deal.title,
            ),
            aggregate_id=str(deal.id),
            directions=deal.directions,
            actor=actor,
        )
    ]
    closed = {
        **common,
        **money,
        "stage_id": stage.id,
        "responsible_employee_id": deal.responsible_employee_id,
        "closed_at": moved_at,
    }
    if deal.status == "won":
        envelopes.append(
            outbox.envelope(
                DEAL_WON,
                DealWon(**closed),
                aggregate_id=str(deal.id),
                directions=deal.directions,
                actor=actor,
            )
        )
    elif deal.status == "lost":
        assert deal.lost_reason is not None
        envelopes.append(
            outbox.envelope(
                DEAL_LOST,
                DealLost(**closed, lost_reason=deal.lost_reason),
                aggregate_id=str(deal.id),
                directions=deal.directions,
                actor=actor,
            )
        )
    return envelopes


def deal_deleted(outbox: Outbox, deal: Deal, actor: Actor) -> Envelope:
    return outbox.envelope(
        DEAL_DELETED,
        DealDeleted(deal_id=deal.id, version=deal.version, organization_id=deal.organization_id),
        aggregate_id=str(deal.id),
        directions=deal.directions,
        actor=actor,
    )
