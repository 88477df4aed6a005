"""Campaigns' facts about persons kept on their cards: each consent change (the newest entry
of campaigns' ledger per channel) and each hard bounce (the address marked for review), applied
in the inbox's transaction and audited on the person as done by campaigns (the system)."""

from __future__ import annotations

import uuid
from typing import Any

from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.events.outbox import Outbox
from clientele_shared.events.schemas.mailings import AddressBounced, ConsentChanged
from clientele_shared.service_layer import UnitOfWork, within
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.mailing_facts import queries
from clientele_directory.mailing_facts.rules import MailingFacts
from clientele_directory.tables import audit_log

CAMPAIGNS_ACTOR = Actor(subject="campaigns", kind="service")
PERSON_KIND = "person"


class CampaignFacts:
    """``clientele.campaigns.consents``: consent changes and hard bounces."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def __call__(self, session: AsyncSession, envelope: Envelope, payload: BaseModel) -> None:
        async with within(session, self.outbox, audit_log, CAMPAIGNS_ACTOR) as uow:
            if isinstance(payload, ConsentChanged):
                await consent_changed(uow, payload, envelope.actor)
            elif isinstance(payload, AddressBounced):
                await address_bounced(uow, payload)


def _shown(values: dict[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {
        "granted": values["granted"],
        "source": values["source"],
        "recorded_at": values["recorded_at"].isoformat(),
        "mailing_id": None if values["mailing_id"] is None else str(values["mailing_id"]),
    }


async def consent_changed(uow: UnitOfWork, payload: ConsentChanged, by: Actor | None) -> None:
    """The person's consent on the channel as campaigns' ledger has it now; an entry older
    than the one kept, or about a person the directory does not have, changes nothing."""
    version = await queries.person_version(uow.session, payload.person_id)
    if version is None:
        return
    before = await queries.consent(uow.session, payload.person_id, payload.channel)
    values = {
        "person_id": payload.person_id,
        "channel": payload.channel,
        "granted": payload.granted,
        "source": payload.source,
        "recorded_at": payload.recorded_at,
        "mailing_id": payload.mailing_id,
        "consent_id": payload.consent_id,
    }
    if not await queries.save_consent(uow.session, values):
        return
    await uow.audit(
        kind=PERSON_KIND,
        entity_id=payload.person_id,
        action="mailing_consent_recorded",
        version=version,
        changes={
            f"mailing_consent.{payload.channel}": {"old": _shown(before), "new": _shown(values)}
        },
        note=f"campaigns' consent entry {payload.consent_id}"
        + (f", recorded by {by.subject}" if by is not None else ""),
    )


async def address_bounced(uow: UnitOfWork, payload: AddressBounced) -> None:
    """The address is marked for review on the person's card (a repeat bounce updates it)."""
    version = await queries.person_version(uow.session, payload.person_id)
    if version is None:
        return
    marked = await queries.mark_address(
        uow.session,
        {
            "person_id": payload.person_id,
            "email": payload.email,
            "mailing_id": payload.mailing_id,
            "reason": payload.reason,
            "bounced_at": payload.bounced_at,
        },
    )
    if marked:
        await uow.audit(
            kind=PERSON_KIND,
            entity_id=payload.person_id,
            action="address_marked_for_review",
            version=version,
            changes={"address_for_review": {"old": None, "new": payload.email}},
            note=f"hard bounce of mailing {payload.mailing_id}: {payload.reason or 'no reason'}",
        )


async def follow_merge(
    uow: UnitOfWork, survivor_id: uuid.UUID, survivor_version: int, merged_id: uuid.UUID
) -> int:
    """The merged person's bounce marks carried to the survivor in the merge's transaction,
    each audited on the survivor (ADR 64); how many. Consent follows through campaigns'
    ledger, which records the carried-over entries and publishes them."""
    carried = await queries.carry_reviews(uow.session, survivor_id, merged_id)
    for email in carried:
        await uow.audit(
            kind=PERSON_KIND,
            entity_id=survivor_id,
            action="address_marked_for_review",
            version=survivor_version,
            changes={"address_for_review": {"old": None, "new": email}},
            note=f"carried over from the merged person {merged_id}",
        )
    return len(carried)


async def facts_of(session: AsyncSession, person_id: uuid.UUID, emails: list[str]) -> MailingFacts:
    """What the person's card shows of campaigns' facts."""
    return MailingFacts(
        mailing_consent=await queries.consents_of(session, person_id),
        addresses_for_review=await queries.reviews_of(session, person_id, emails),
    )
