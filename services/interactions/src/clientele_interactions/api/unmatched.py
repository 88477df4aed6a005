"""Unmatched addresses of captured mail: list them, link one to a person (who joins the
interaction's participants), or dismiss it.

Visibility follows the captured interaction's client; the addresses of mailbox mail that found
no client are seen by whoever sees one of its candidate clients, or every direction.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.auth.principal import Principal
from clientele_shared.http.concurrency import etag
from clientele_shared.http.problems import NotFound
from clientele_shared.service_layer import actor_of
from fastapi import APIRouter, Query, Response
from sqlalchemy import Select, and_, any_, exists, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from clientele_interactions.api.common import Runtime, Writer
from clientele_interactions.domain.model import (
    LinkOutcome,
    LinkRequest,
    UnmatchedAddress,
    UnmatchedStatus,
)
from clientele_interactions.domain.rules import StateConflict
from clientele_interactions.operations import (
    audit,
    bump_summary,
    ensure_writable,
    lock_participants,
    resolve_persons,
    update_interaction,
    visible_clients,
    visible_interaction,
    writable_interaction,
)
from clientele_interactions.publishing import Publisher
from clientele_interactions.store import client_cards, interactions, unmatched_addresses

router = APIRouter(prefix="/v1/unmatched-addresses", tags=["e-mail capture"])
NO_ITEM = "No such unmatched address."
candidate = client_cards.alias("candidate")


def _uncaptured_visible(principal: Principal) -> ColumnElement[bool]:
    if principal.sees_all_directions:
        return true()
    return exists(
        select(candidate.c.organization_id).where(
            candidate.c.organization_id == any_(unmatched_addresses.c.candidates),
            ~candidate.c.deleted,
            visible_to(principal, candidate.c.directions),
        )
    )


def _visible(principal: Principal) -> Select[Any]:
    """Unmatched addresses the principal may see, with their interaction's client."""
    return (
        select(unmatched_addresses, interactions.c.organization_id)
        .outerjoin(interactions, interactions.c.id == unmatched_addresses.c.interaction_id)
        .outerjoin(client_cards, client_cards.c.organization_id == interactions.c.organization_id)
        .where(
            or_(
                and_(unmatched_addresses.c.interaction_id.is_not(None), visible_clients(principal)),
                and_(
                    unmatched_addresses.c.interaction_id.is_(None),
                    _uncaptured_visible(principal),
                ),
            )
        )
    )


def _item(row: Any) -> UnmatchedAddress:
    return UnmatchedAddress.model_validate(dict(row._mapping))


async def _visible_item(
    session: AsyncSession, principal: Principal, item_id: uuid.UUID, *, lock: bool = False
) -> UnmatchedAddress:
    stmt = _visible(principal).where(unmatched_addresses.c.id == item_id)
    if lock:
        stmt = stmt.with_for_update(of=unmatched_addresses)
    row = (await session.execute(stmt)).first()
    if row is None:
        raise NotFound(NO_ITEM)
    return _item(row)


@router.get("")
async def list_unmatched(
    principal: CurrentPrincipal,
    runtime: Runtime,
    status: UnmatchedStatus = "open",
    organization_id: uuid.UUID | None = None,
    interaction_id: uuid.UUID | None = None,
    address: Annotated[str | None, Query(max_length=320)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> list[UnmatchedAddress]:
    """The unmatched addresses of captured mail the caller may see (open ones by default),
    oldest first: those of interactions at visible clients, and those of mailbox mail that
    found no client when the caller sees one of its candidates (or every direction)."""
    stmt = _visible(principal).where(unmatched_addresses.c.status == status)
    if organization_id is not None:
        stmt = stmt.where(interactions.c.organization_id == organization_id)
    if interaction_id is not None:
        stmt = stmt.where(unmatched_addresses.c.interaction_id == interaction_id)
    if address is not None:
        stmt = stmt.where(unmatched_addresses.c.address == address.strip().lower())
    stmt = stmt.order_by(unmatched_addresses.c.seq)
    async with runtime.sessions() as session:
        rows = (await session.execute(stmt.limit(limit).offset(offset))).all()
    return [_item(row) for row in rows]


@router.get("/{item_id}")
async def get_unmatched(
    item_id: uuid.UUID, principal: CurrentPrincipal, runtime: Runtime
) -> UnmatchedAddress:
    async with runtime.sessions() as session:
        return await _visible_item(session, principal, item_id)


def _open(item: UnmatchedAddress) -> None:
    if item.status != "open":
        raise StateConflict(f"This address was {item.status} already.")


async def _resolve(
    session: AsyncSession,
    item_id: uuid.UUID,
    principal: Principal,
    status: str,
    person_id: uuid.UUID | None = None,
) -> UnmatchedAddress:
    row = (
        await session.execute(
            unmatched_addresses.update()
            .where(unmatched_addresses.c.id == item_id)
            .values(
                status=status,
                person_id=person_id,
                resolved_at=func.now(),
                resolved_by=principal.subject,
            )
            .returning(unmatched_addresses)
        )
    ).one()
    return _item(row)


@router.post("/{item_id}/link")
async def link_unmatched(
    item_id: uuid.UUID,
    request: LinkRequest,
    principal: Writer,
    runtime: Runtime,
    response: Response,
) -> LinkOutcome:
    """The address belongs to this person (one the directory knows; a merged person's
    survivor): the person joins the captured interaction's participants (a new version, an
    audit entry, ``interaction.updated``) and the address is resolved. 409 when it was resolved
    already or its mail was not captured (no interaction to link: capture the message with the
    client given); 422 for a person unknown here or deleted."""
    async with runtime.sessions() as session, session.begin():
        item = await _visible_item(session, principal, item_id, lock=True)
        _open(item)
        if item.interaction_id is None:
            raise StateConflict(
                "This mail found no client and was not captured: there is no interaction to "
                "link. Capture it with organization_id (upload the message) or dismiss this."
            )
        await lock_participants(session, item.interaction_id, [request.person_id])
        [person_id], _ = await resolve_persons(
            session, principal, [request.person_id], field="person_id"
        )
        current, card = await writable_interaction(session, principal, item.interaction_id)
        updated = current
        if person_id not in current.person_ids:
            actor = actor_of(principal)
            person_ids = [*current.person_ids, person_id]
            updated = await update_interaction(
                session, current, {"person_ids": person_ids}, updated_by=principal.subject
            )
            change: dict[str, object] = {
                "old": [str(p) for p in current.person_ids],
                "new": [str(p) for p in person_ids],
            }
            await audit(
                session,
                actor,
                interaction_id=updated.id,
                action="participant_linked",
                version=updated.version,
                changes={"person_ids": change},
                note=f"{item.address} is {person_id}",
            )
            publisher = Publisher(runtime.outbox, card.directions, actor)
            await runtime.outbox.add(session, publisher.updated(updated, {"person_ids": change}))
            await bump_summary(session, card.organization_id)
        resolved = await _resolve(session, item_id, principal, "linked", person_id)
    response.headers["ETag"] = etag(updated.version)
    return LinkOutcome(
        unmatched=resolved.model_copy(update={"organization_id": card.organization_id}),
        interaction=updated,
    )


@router.post("/{item_id}/dismiss")
async def dismiss_unmatched(
    item_id: uuid.UUID, principal: Writer, runtime: Runtime
) -> UnmatchedAddress:
    """Nobody to link (a mailing list, a one-off sender): the address is resolved without a
    person. Needs the right to write about the interaction's client (403), or, for mail that
    found no client, to see every direction or one of its candidates; 409 when resolved
    already."""
    async with runtime.sessions() as session, session.begin():
        item = await _visible_item(session, principal, item_id, lock=True)
        _open(item)
        if item.interaction_id is not None:
            _, card = await visible_interaction(session, principal, item.interaction_id)
            ensure_writable(principal, card)
            await audit(
                session,
                actor_of(principal),
                interaction_id=item.interaction_id,
                action="unmatched_dismissed",
                version=None,
                note=f"{item.address} dismissed",
            )
        resolved = await _resolve(session, item_id, principal, "dismissed")
    return resolved.model_copy(update={"organization_id": item.organization_id})
