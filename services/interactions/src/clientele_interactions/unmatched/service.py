"""Unmatched address operations: keep those of captured mail, list and read them, link one to a
person (who joins the captured interaction's participants), or dismiss it."""

from __future__ import annotations

import uuid
from typing import Any

from clientele_shared.auth.principal import Principal
from clientele_shared.http.problems import NotFound
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import unit_of_work
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_interactions.capture.parsing import CapturedMessage
from clientele_interactions.log.queries import (
    bump_summary,
    lock_participants,
    resolve_persons,
    update_interaction,
    visible_interaction,
    writable_interaction,
)
from clientele_interactions.log.rules import StateConflict
from clientele_interactions.publishing import Publisher
from clientele_interactions.tables import interaction_audit
from clientele_interactions.unmatched import queries
from clientele_interactions.unmatched.rules import LinkOutcome, UnmatchedAddress
from clientele_interactions.visibility import ensure_writable

NO_ITEM = "No such unmatched address."


async def keep_unknown(
    session: AsyncSession,
    principal: Principal,
    message: CapturedMessage,
    unknown: list[str],
    *,
    interaction_id: uuid.UUID | None,
    organization_id: uuid.UUID | None = None,
    candidates: list[uuid.UUID] | None = None,
    mailbox: str | None,
) -> list[UnmatchedAddress]:
    """Keep the unknown addresses of a message for a person to resolve, in the caller's
    transaction (one record per address and captured interaction, or per address and mailbox
    message when it was not captured)."""
    if not unknown:
        return []
    roles = message.roles()
    rows = [  # in the order of the addresses (``seq``)
        {
            "id": uuid.uuid4(),
            "address": address[:320],
            "display_name": (roles[address][1] or "")[:500] or None,
            "role": roles[address][0],
            "subject": (message.subject or "(no subject)")[:500],
            "message_id": message.message_id,
            "sent_at": message.sent_at,
            "interaction_id": interaction_id,
            "candidates": candidates or [],
            "mailbox": mailbox,
            "created_by": principal.subject,
        }
        for address in unknown
    ]
    stored = await queries.insert_items(session, rows)
    return [
        UnmatchedAddress.model_validate({**row._mapping, "organization_id": organization_id})
        for row in stored
    ]


def _item(row: Any) -> UnmatchedAddress:
    return UnmatchedAddress.model_validate(dict(row._mapping))


async def _visible_item(
    session: AsyncSession, principal: Principal, item_id: uuid.UUID, *, lock: bool = False
) -> UnmatchedAddress:
    row = await queries.visible_item(session, principal, item_id, lock=lock)
    if row is None:
        raise NotFound(NO_ITEM)
    return _item(row)


def _open(item: UnmatchedAddress) -> None:
    if item.status != "open":
        raise StateConflict(f"This address was {item.status} already.")


async def list_unmatched(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    status: str,
    organization_id: uuid.UUID | None,
    interaction_id: uuid.UUID | None,
    address: str | None,
    limit: int,
    offset: int,
) -> list[UnmatchedAddress]:
    """The unmatched addresses of captured mail the caller may see, oldest first: those of
    interactions at visible clients, and those of mailbox mail that found no client when the
    caller sees one of its candidates (or every direction)."""
    async with runtime.sessions() as session:
        rows = await queries.visible_items(
            session,
            principal,
            status=status,
            organization_id=organization_id,
            interaction_id=interaction_id,
            address=address.strip().lower() if address is not None else None,
            limit=limit,
            offset=offset,
        )
    return [_item(row) for row in rows]


async def get_unmatched(
    *, runtime: ServiceRuntime, principal: Principal, item_id: uuid.UUID
) -> UnmatchedAddress:
    async with runtime.sessions() as session:
        return await _visible_item(session, principal, item_id)


async def link_unmatched(
    *, runtime: ServiceRuntime, principal: Principal, item_id: uuid.UUID, person_id: uuid.UUID
) -> LinkOutcome:
    """The address belongs to this person (one the directory knows; a merged person's
    survivor): the person joins the captured interaction's participants (a new version, an
    audit entry, ``interaction.updated``) and the address is resolved. 409 when it was resolved
    already or its mail was not captured; 422 for a person unknown here or deleted."""
    async with unit_of_work(runtime.sessions, runtime.outbox, interaction_audit, principal) as uow:
        session = uow.session
        item = await _visible_item(session, principal, item_id, lock=True)
        _open(item)
        if item.interaction_id is None:
            raise StateConflict(
                "This mail found no client and was not captured: there is no interaction to "
                "link. Capture it with organization_id (upload the message) or dismiss this."
            )
        await lock_participants(session, item.interaction_id, [person_id])
        [person_id], _ = await resolve_persons(session, principal, [person_id], field="person_id")
        current, card = await writable_interaction(session, principal, item.interaction_id)
        updated = current
        if person_id not in current.person_ids:
            person_ids = [*current.person_ids, person_id]
            updated = await update_interaction(
                session, current, {"person_ids": person_ids}, updated_by=principal.subject
            )
            change: dict[str, object] = {
                "old": [str(p) for p in current.person_ids],
                "new": [str(p) for p in person_ids],
            }
            await uow.audit(
                kind="interaction",
                entity_id=updated.id,
                action="participant_linked",
                version=updated.version,
                changes={"person_ids": change},
                note=f"{item.address} is {person_id}",
            )
            publisher = Publisher(runtime.outbox, card.directions, uow.actor)
            uow.stage(publisher.updated(updated, {"person_ids": change}))
            await bump_summary(session, card.organization_id)
        row = await queries.resolve(
            session, item_id, status="linked", resolved_by=principal.subject, person_id=person_id
        )
    return LinkOutcome(
        unmatched=_item(row).model_copy(update={"organization_id": card.organization_id}),
        interaction=updated,
    )


async def dismiss_unmatched(
    *, runtime: ServiceRuntime, principal: Principal, item_id: uuid.UUID
) -> UnmatchedAddress:
    """Nobody to link (a mailing list, a one-off sender): the address is resolved without a
    person. Needs the right to write about the interaction's client (403), or, for mail that
    found no client, to see every direction or one of its candidates; 409 when resolved
    already."""
    async with unit_of_work(runtime.sessions, runtime.outbox, interaction_audit, principal) as uow:
        item = await _visible_item(uow.session, principal, item_id, lock=True)
        _open(item)
        if item.interaction_id is not None:
            _, card = await visible_interaction(uow.session, principal, item.interaction_id)
            ensure_writable(principal, card)
            await uow.audit(
                kind="interaction",
                entity_id=item.interaction_id,
                action="unmatched_dismissed",
                version=None,
                note=f"{item.address} dismissed",
            )
        row = await queries.resolve(
            uow.session, item_id, status="dismissed", resolved_by=principal.subject
        )
    return _item(row).model_copy(update={"organization_id": item.organization_id})
