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
from clientele_campaigns.consent.rules import (
    CHANNELS,
    ConsentEntry,
    ConsentRequest,
    Consents,
    consents,
)

_NOT_FOUND = "The person does not exist."
MAX_MERGE_HOPS = 8
"""How many merges in a row a withdrawal follows to the person standing for them now."""


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
    longer has; a repeated click records nothing new). A link of a person merged since
    withdraws the survivor's consent (ADR 64)."""
    person = await _survivor(uow.session, person_id)
    if person is None:
        return None
    person_id = person.person_id
    newest = (await queries.granted(uow.session, [person_id], channel)).get(person_id)
    if newest is not None and not newest.granted and newest.source == "unsubscribe":
        return newest
    return await _record(
        uow, person, channel=channel, granted=False, source="unsubscribe", mailing_id=mailing_id
    )


async def _survivor(session: AsyncSession, person_id: uuid.UUID) -> PersonRecord | None:
    """The person, or the one they were merged into (through a few merges in a row)."""
    person = (await READ_MODELS.persons_of(session, [person_id])).get(person_id)
    for _ in range(MAX_MERGE_HOPS):
        if person is None or person.merged_into is None:
            return person
        survivor = (await READ_MODELS.persons_of(session, [person.merged_into])).get(
            person.merged_into
        )
        if survivor is None:
            return person
        person = survivor
    return person


async def follow_merge(uow: UnitOfWork, before: PersonRecord | None, after: PersonRecord) -> None:
    """A person merged into another: their consent carries over to the survivor, per channel,
    the more restrictive kept (ADR 64). The merged person's withdrawal is recorded on the
    survivor unless the survivor's newest entry withdraws already; their grant only where the
    survivor has no entry at all. An opt-out is never lost to a merge."""
    survivor_id = after.merged_into
    if survivor_id is None or (before is not None and before.merged_into == survivor_id):
        return
    survivor = (await READ_MODELS.persons_of(uow.session, [survivor_id])).get(survivor_id)
    target = survivor or after.model_copy(update={"person_id": survivor_id, "merged_into": None})
    for channel in CHANNELS:
        theirs = (await queries.granted(uow.session, [after.person_id], channel)).get(
            after.person_id
        )
        if theirs is None:
            continue
        kept = (await queries.granted(uow.session, [survivor_id], channel)).get(survivor_id)
        if (theirs.granted and kept is not None) or (kept is not None and not kept.granted):
            continue
        await _record(
            uow,
            target,
            channel=channel,
            granted=theirs.granted,
            source=theirs.source,
            mailing_id=theirs.mailing_id,
            note=f"the directory merged {after.person_id} into {survivor_id}: "
            f"their consent entry {theirs.id}",
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
