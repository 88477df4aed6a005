"""Events in: campaigns' consent changes and hard bounces, kept on the persons' cards
(``mailing_facts``), applied exactly once in the inbox's transaction with their audit entries."""

from __future__ import annotations

from clientele_shared.events.inbox import EventConsumer
from clientele_shared.events.outbox import Outbox
from clientele_shared.events.topics import CAMPAIGN_CONSENTS

from clientele_directory.mailing_facts.service import CampaignFacts


def subscribe(consumer: EventConsumer, outbox: Outbox) -> None:
    consumer.subscribe(CAMPAIGN_CONSENTS, "campaign-facts", CampaignFacts(outbox))
