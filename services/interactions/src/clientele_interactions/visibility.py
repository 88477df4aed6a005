"""Who sees which client: the client card's visibility and the right to write about it.

Service-wide (every feature reads interactions through their client): an interaction is visible
to whoever sees its organization's card.
"""

from __future__ import annotations

import uuid
from typing import Any

from clientele_shared.auth.access import ForbiddenDirectionError, ensure_visible, visible_to
from clientele_shared.auth.principal import Principal, Role
from clientele_shared.http.problems import NotFound
from sqlalchemy import Row, and_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from clientele_interactions.clients.rules import ClientCard
from clientele_interactions.tables import client_cards

NO_CLIENT = "No such client."


def live_cards() -> ColumnElement[bool]:
    """Cards that are shown: not deleted in the directory (a merged one is deleted too)."""
    return ~client_cards.c.deleted


def visible_clients(principal: Principal) -> ColumnElement[bool]:
    """The clients ``principal`` sees: live cards of the caller's directions (join
    ``client_cards``)."""
    return and_(live_cards(), visible_to(principal, client_cards.c.directions))


async def _card_row(
    session: AsyncSession, organization_id: uuid.UUID, lock: bool
) -> Row[Any] | None:
    stmt = select(client_cards).where(client_cards.c.organization_id == organization_id)
    if lock:
        # FOR KEY SHARE: writers about one client do not wait for each other, but an event
        # that merges or deletes the client (FOR UPDATE) waits for them, and they for it.
        stmt = stmt.with_for_update(read=True, key_share=True)
    return (await session.execute(stmt)).first()


async def load_card(
    session: AsyncSession, organization_id: uuid.UUID, *, lock: bool = False
) -> ClientCard | None:
    """The client's card; a merged organization answers its survivor's (merges are flattened:
    one hop). None when unknown here or deleted."""
    row = await _card_row(session, organization_id, lock)
    if row is not None and row.merged_into is not None:
        row = await _card_row(session, row.merged_into, lock)
    if row is None or row.deleted:
        return None
    return ClientCard.model_validate(row, from_attributes=True)


async def visible_card(
    session: AsyncSession, principal: Principal, organization_id: uuid.UUID, *, lock: bool = False
) -> ClientCard:
    """The client card if the caller may see it; 404 otherwise (also when unknown here yet or
    deleted). The card of a merged organization is its survivor's."""
    card = await load_card(session, organization_id, lock=lock)
    if card is None:
        raise NotFound(NO_CLIENT)
    ensure_visible(principal, card.directions, NO_CLIENT)
    return card


def ensure_writable(principal: Principal, card: ClientCard) -> None:
    """Writing about a client needs membership of one of its directions (admins and services
    may write anywhere; seeing every direction, as a security officer does, is not enough)."""
    if principal.is_service or principal.has_role(Role.ADMIN):
        return
    if principal.directions.isdisjoint(card.directions):
        raise ForbiddenDirectionError(card.directions)


async def writable_card(
    session: AsyncSession, principal: Principal, organization_id: uuid.UUID
) -> ClientCard:
    """The card to write about, locked against a concurrent merge or deletion until the
    transaction ends (a merged organization's survivor)."""
    card = await visible_card(session, principal, organization_id, lock=True)
    ensure_writable(principal, card)
    return card
