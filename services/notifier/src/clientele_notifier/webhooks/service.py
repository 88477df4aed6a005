"""Webhook endpoint operations: register (URL vetted, secret encrypted), change, remove, list,
and send an endpoint's failed deliveries again."""

from __future__ import annotations

import uuid
from typing import Any

from clientele_shared.auth.principal import Principal
from clientele_shared.http.problems import Conflict, NotFound, ProblemError
from clientele_shared.runtime import ServiceRuntime
from sqlalchemy import Row
from sqlalchemy.exc import IntegrityError

from clientele_notifier.channels.webhook import SecretBox, UnresolvableHostError, WebhookGuard
from clientele_notifier.deliveries import service as deliveries
from clientele_notifier.webhooks import queries
from clientele_notifier.webhooks.rules import (
    UrlRefusedError,
    WebhookEndpoint,
    WebhookEndpointDraft,
    WebhookEndpointPatch,
)


async def vet(guard: WebhookGuard, url: str) -> None:
    """Refuse (422) a URL the webhook guard would not call now: its scheme, or an address its
    host resolves to (loopback, private, link-local, metadata... unless allowed by settings)."""
    try:
        await guard.pin(url)
    except (UrlRefusedError, UnresolvableHostError) as exc:
        raise ProblemError(
            422,
            "Webhook URL Refused",
            f"The notifier does not call this URL: {exc}. Nothing was changed.",
            kind="webhook-url-refused",
            errors=[{"location": ["body", "url"], "message": str(exc), "type": "url_refused"}],
        ) from None


async def endpoint_named(*, runtime: ServiceRuntime, name: str) -> Row[Any] | None:
    """The stored endpoint (secret included) a webhook delivery goes to."""
    async with runtime.sessions() as session:
        return await queries.endpoint_named(session, name)


async def get_endpoint(*, runtime: ServiceRuntime, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    async with runtime.sessions() as session:
        row = await queries.endpoint(session, endpoint_id)
    if row is None:
        raise NotFound("No such webhook endpoint.")
    return WebhookEndpoint.model_validate(row, from_attributes=True)


async def list_endpoints(*, runtime: ServiceRuntime) -> list[WebhookEndpoint]:
    async with runtime.sessions() as session:
        rows = await queries.endpoints(session)
    return [WebhookEndpoint.model_validate(row, from_attributes=True) for row in rows]


async def create_endpoint(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    draft: WebhookEndpointDraft,
    guard: WebhookGuard,
    secrets: SecretBox,
) -> WebhookEndpoint:
    """Register an endpoint; its secret is stored encrypted (409 for a name in use)."""
    await vet(guard, draft.url)
    endpoint_id = uuid.uuid4()
    try:
        async with deliveries.work(runtime, principal) as uow:
            await queries.insert_endpoint(
                uow.session,
                endpoint_id,
                secret_encrypted=secrets.encrypt(draft.secret.get_secret_value()),
                **draft.model_dump(exclude={"secret"}),
            )
    except IntegrityError:
        raise Conflict(f"An endpoint named {draft.name!r} exists.") from None
    return await get_endpoint(runtime=runtime, endpoint_id=endpoint_id)


async def update_endpoint(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    endpoint_id: uuid.UUID,
    patch: WebhookEndpointPatch,
    guard: WebhookGuard,
    secrets: SecretBox,
) -> WebhookEndpoint:
    """Change an endpoint (a new secret rotates it; a new URL is vetted as on creation)."""
    if patch.url is not None:
        await vet(guard, patch.url)
    values: dict[str, Any] = patch.model_dump(exclude_unset=True, exclude={"secret"})
    if patch.secret is not None:
        values["secret_encrypted"] = secrets.encrypt(patch.secret.get_secret_value())
    async with deliveries.work(runtime, principal) as uow:
        found = await queries.update_endpoint(uow.session, endpoint_id, values)
    if not found:
        raise NotFound("No such webhook endpoint.")
    return await get_endpoint(runtime=runtime, endpoint_id=endpoint_id)


async def delete_endpoint(
    *, runtime: ServiceRuntime, principal: Principal, endpoint_id: uuid.UUID
) -> None:
    async with deliveries.work(runtime, principal) as uow:
        found = await queries.delete_endpoint(uow.session, endpoint_id)
    if not found:
        raise NotFound("No such webhook endpoint.")


async def replay_endpoint(
    *, runtime: ServiceRuntime, principal: Principal, endpoint_id: uuid.UUID
) -> int:
    """Send every failed (dead-lettered or refused) delivery to this endpoint again."""
    endpoint = await get_endpoint(runtime=runtime, endpoint_id=endpoint_id)
    async with deliveries.work(runtime, principal) as uow:
        return await deliveries.replay_failed_to(uow, endpoint.name)
