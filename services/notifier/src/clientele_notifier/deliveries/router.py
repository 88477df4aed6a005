"""HTTP of the delivery log and replays (admins and services)."""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.dependencies import require_roles
from clientele_shared.auth.principal import Principal, Role
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Depends, Query

from clientele_notifier.deliveries import service
from clientele_notifier.deliveries.rules import Delivery, DeliveryState

router = APIRouter(prefix="/v1/deliveries", tags=["deliveries"])
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
Operator = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.SERVICE))]


@router.get("")
async def list_deliveries(
    principal: Operator,
    runtime: CurrentRuntime,
    requester: Annotated[str | None, Query(max_length=64)] = None,
    idempotency_key: Annotated[str | None, Query(max_length=200)] = None,
    request_id: uuid.UUID | None = None,
    state: DeliveryState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[Delivery]:
    """The deliveries of a message (by requester and idempotency key, or request id) with the
    log of their attempts. A service sees only its own requests."""
    return await service.list_deliveries(
        runtime=runtime,
        principal=principal,
        requester=requester,
        idempotency_key=idempotency_key,
        request_id=request_id,
        state=state,
        limit=limit,
    )


@router.get("/{delivery_id}")
async def get_delivery(
    delivery_id: uuid.UUID, principal: Operator, runtime: CurrentRuntime
) -> Delivery:
    return await service.get_delivery(runtime=runtime, principal=principal, delivery_id=delivery_id)


@router.post("/{delivery_id}/replay")
async def replay_delivery(
    delivery_id: uuid.UUID, principal: Admin, runtime: CurrentRuntime
) -> Delivery:
    """Send a failed webhook delivery again (fresh attempts); 409 for any other."""
    return await service.replay_delivery(
        runtime=runtime, principal=principal, delivery_id=delivery_id
    )
