"""HTTP of webhook endpoints (admins)."""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.dependencies import require_roles
from clientele_shared.auth.principal import Principal, Role
from clientele_shared.http.problems import ProblemError
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Depends, Request, Response, status

from clientele_notifier.channels.webhook import SecretBox, WebhookGuard
from clientele_notifier.webhooks import service
from clientele_notifier.webhooks.rules import (
    WebhookEndpoint,
    WebhookEndpointDraft,
    WebhookEndpointPatch,
)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]


def _secrets(request: Request) -> SecretBox:
    box: SecretBox = request.app.state.notifier.worker.secrets
    if not box.configured:
        raise ProblemError(
            503,
            "Webhooks Not Configured",
            "WEBHOOK_SECRETS_KEY is not set: endpoint secrets cannot be stored.",
            kind="webhooks-not-configured",
        )
    return box


def _guard(request: Request) -> WebhookGuard:
    guard: WebhookGuard = request.app.state.notifier.worker.guard
    return guard


Secrets = Annotated[SecretBox, Depends(_secrets)]
Guard = Annotated[WebhookGuard, Depends(_guard)]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_endpoint(
    draft: WebhookEndpointDraft,
    principal: Admin,
    runtime: CurrentRuntime,
    secrets: Secrets,
    guard: Guard,
    response: Response,
) -> WebhookEndpoint:
    """Register a webhook endpoint; its secret is stored encrypted and never shown again. The
    URL must be https and reach a public address unless settings allow more (422 otherwise)."""
    endpoint = await service.create_endpoint(
        runtime=runtime, principal=principal, draft=draft, guard=guard, secrets=secrets
    )
    response.headers["Location"] = f"/v1/webhooks/{endpoint.id}"
    return endpoint


@router.get("")
async def list_endpoints(_: Admin, runtime: CurrentRuntime) -> list[WebhookEndpoint]:
    return await service.list_endpoints(runtime=runtime)


@router.get("/{endpoint_id}")
async def get_endpoint(
    endpoint_id: uuid.UUID, _: Admin, runtime: CurrentRuntime
) -> WebhookEndpoint:
    return await service.get_endpoint(runtime=runtime, endpoint_id=endpoint_id)


@router.patch("/{endpoint_id}")
async def update_endpoint(
    endpoint_id: uuid.UUID,
    patch: WebhookEndpointPatch,
    principal: Admin,
    runtime: CurrentRuntime,
    secrets: Secrets,
    guard: Guard,
) -> WebhookEndpoint:
    """Change an endpoint (a new secret rotates it; a new URL is vetted as on creation)."""
    return await service.update_endpoint(
        runtime=runtime,
        principal=principal,
        endpoint_id=endpoint_id,
        patch=patch,
        guard=guard,
        secrets=secrets,
    )


@router.delete("/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_endpoint(
    endpoint_id: uuid.UUID, principal: Admin, runtime: CurrentRuntime
) -> None:
    await service.delete_endpoint(runtime=runtime, principal=principal, endpoint_id=endpoint_id)


@router.post("/{endpoint_id}/replay")
async def replay_endpoint(
    endpoint_id: uuid.UUID, principal: Admin, runtime: CurrentRuntime
) -> dict[str, int]:
    """Send every failed (dead-lettered or refused) delivery to this endpoint again."""
    replayed = await service.replay_endpoint(
        runtime=runtime, principal=principal, endpoint_id=endpoint_id
    )
    return {"replayed": replayed}
