"""Campaigns' mailing results in: each fires the `mailing_result` rules of the open deals of
the recipient's organization and of the deals the recipient is a contact of, within the
directions of the mailing (a rule never learns of a mailing its deal's directions do not see)."""

from __future__ import annotations

from clientele_shared.events.envelope import Envelope
from clientele_shared.events.outbox import Outbox
from clientele_shared.events.schemas.mailings import MailingResultRecorded
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_pipeline.automation import engine
from clientele_pipeline.automation.mailing_trigger import KIND, deal_event_id, mailing_facts
from clientele_pipeline.automation.rules import Occurrence
from clientele_pipeline.deals import queries as deal_queries


class MailingResultTriggers:
    """One occurrence per deal concerned, each fired in the inbox's transaction (a redelivered
    result fires nothing twice: the firing is claimed once per rule, version and event)."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def __call__(self, session: AsyncSession, envelope: Envelope, payload: BaseModel) -> None:
        if not isinstance(payload, MailingResultRecorded) or not envelope.directions:
            return
        values = payload.model_dump(mode="json")
        facts = mailing_facts(values, envelope.event_id)
        deal_ids = await deal_queries.open_deal_ids_about(
            session, payload.organization_id, payload.person_id, envelope.directions
        )
        for deal_id in deal_ids:
            occurrence = Occurrence(
                event_id=deal_event_id(envelope.event_id, deal_id),
                kind=KIND,
                deal_id=deal_id,
                facts=facts,
            )
            await engine.on_occurrences(
                session,
                self.outbox,
                [occurrence],
                envelope.causation_id,
                envelope.occurred_at,
                envelope.type,
            )
