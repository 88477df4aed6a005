"""Consent operations: record one (by a user, or by an unsubscribe link), read a person's."""

from __future__ import annotations

import uuid

from clientele_shared.auth.principal import Principal
from clientele_shared.directory_read_models import PersonRecord
from clientele_shared.http.problems import NotFound, invalid_field
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import UnitOfWork
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_campaigns import publishing
from clientele_campaigns.campaigns import service as campaigns
from clientele_campaigns.clients.service import READ_MODELS
from clientele_campaigns.consent import queries
from clientele_campaigns.consent.rules import ConsentEntry, ConsentRequest, Consents, consents

_NOT_FOUND = "The person does not exist."


async def _visible_person(
    session: AsyncSession, principal: Principal, person_id: uuid.UUID
) -> PersonRecord | None:
    person = (await READ_MODELS.persons_of(session, [person_id])).get(person_id)
    if person is None or person.deleted or not principal.can_see(person.directions):
        return None
    return person


async def record(
    *, runtime: ServiceRuntime, principal: Principal, request: ConsentRequest
) -> ConsentEntry:
    """One ledger entry and its ``consent.changed`` event (422 for a person unknown or unseen)."""
    async with campaigns.work(runtime, principal) as uow:
        person = await _visible_person(uow.session, principal, request.person_id)
        if person is None:
            raise invalid_field("person_id", "no such person", "unknown_reference")
        return await _record(
            uow,
            person,
            channel=request.channel,
            granted=request.granted,
            source=request.source,
            note=request.note,
        )


async def unsubscribed(
    uow: UnitOfWork, person_id: uuid.UUID, mailing_id: uuid.UUID, channel: str
) -> ConsentEntry | None:
    """A withdrawal through a mailing's unsubscribe link (none for a person the directory no
    longer has; a repeated click records nothing new)."""
    person = (await READ_MODELS.persons_of(uow.session, [person_id])).get(person_id)
    if person is None:
        return None
    newest = (await queries.granted(uow.session, [person_id], channel)).get(person_id)
    if newest is not None and not newest.granted and newest.source == "unsubscribe":
        return newest
    return await _record(
        uow, person, channel=channel, granted=False, source="unsubscribe", mailing_id=mailing_id
    )


async def _record(
    uow: UnitOfWork,
    person: PersonRecord,
    *,
    channel: str,
    granted: bool,
    source: str,
    note: str | None = None,
    mailing_id: uuid.UUID | None = None,
) -> ConsentEntry:
    entry = await queries.record(
        uow.session,
        {
            "person_id": person.person_id,
            "channel": channel,
            "granted": granted,
            "source": source,
            "note": note,
            "mailing_id": mailing_id,
            "actor_subject": uow.actor.subject,
        },
    )
    uow.stage(publishing.consent_changed(uow.outbox, entry, person.directions, uow.actor))
    return entry


async def of_person(
    *, runtime: ServiceRuntime, principal: Principal, person_id: uuid.UUID, limit: int
) -> Consents:
    """A person's consent per channel now and the ledger, newest first (404 unseen)."""
    async with runtime.sessions() as session:
        if await _visible_person(session, principal, person_id) is None:
            raise NotFound(_NOT_FOUND)
        return consents(person_id, await queries.history(session, person_id, limit))


async def granted(
    session: AsyncSession, person_ids: list[uuid.UUID], channel: str
) -> dict[uuid.UUID, ConsentEntry]:
    """The newest consent entry per person for a channel (absent: never given)."""
    return await queries.granted(session, person_ids, channel)
