"""Client operations: the card the caller may see, and the client summary (cached)."""

from __future__ import annotations

import uuid
from datetime import datetime

from clientele_shared.auth.access import ensure_visible
from clientele_shared.auth.principal import Principal
from clientele_shared.http.problems import NotFound
from clientele_shared.runtime import ServiceRuntime

from clientele_interactions.clients import queries
from clientele_interactions.clients.cache import SummaryCache
from clientele_interactions.clients.rules import ClientCard, Summary, present
from clientele_interactions.visibility import NO_CLIENT, visible_card


async def client_card(
    *, runtime: ServiceRuntime, principal: Principal, organization_id: uuid.UUID
) -> ClientCard:
    """The client's card; 404 outside the caller's directions or when deleted; a merged
    organization's survivor's card."""
    async with runtime.sessions() as session:
        return await visible_card(session, principal, organization_id)


async def client_summary(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    cache: SummaryCache,
    organization_id: uuid.UUID,
    last: int,
    upcoming: int,
    now: datetime,
) -> tuple[Summary, bool]:
    """The client summary as far as the caller's directions allow, and whether the body came
    from the cache. The body and the generation are read in one REPEATABLE READ snapshot."""
    async with runtime.sessions() as session:
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        found = await queries.card_and_generation(session, organization_id)
        if found is None:
            raise NotFound(NO_CLIENT)
        card, generation = found
        ensure_visible(principal, card.directions, NO_CLIENT)
        key = cache.key(card.organization_id, generation, last, upcoming)
        body = await cache.get(key)
        hit = body is not None
        if body is None:
            body = await queries.build_body(
                session, card.organization_id, last=last, upcoming=upcoming, now=now
            )
            await cache.put(key, body)
        overdue = await queries.overdue_count(session, card.organization_id, now)
    return present(card, body, principal, now=now, overdue_count=overdue), hit
