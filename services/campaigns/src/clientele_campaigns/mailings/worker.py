"""The mailing worker: starts due mailings and hands their recipients to the notifier, batch by
batch, and prints paper mailings, on every replica (row locks keep replicas apart); the
greetings' sweep starts each greeting's mailing of the day (ADR 51)."""

from __future__ import annotations

import asyncio

from clientele_shared.runtime import ServiceRuntime
from clientele_shared.storage import AttachmentStorage

from clientele_campaigns.greetings import service as greetings
from clientele_campaigns.mailings import service
from clientele_campaigns.settings import CampaignsSettings


class MailingWorker:
    def __init__(
        self, runtime: ServiceRuntime, settings: CampaignsSettings, storage: AttachmentStorage
    ) -> None:
        self.runtime = runtime
        self.settings = settings
        self.storage = storage

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_fax_check = loop.time()
        while True:
            if loop.time() >= next_fax_check:  # once a minute: the timeout is in minutes
                await service.fail_unanswered_faxes(self.runtime, self.settings)
                next_fax_check = loop.time() + 60
            await greetings.sweep(self.runtime, self.settings)
            prepared = await service.prepare_due(self.runtime)
            handed = await service.hand_over(self.runtime, self.settings, self.storage)
            handed += await service.print_due(self.runtime, self.settings, self.storage)
            if not prepared and handed == 0:
                await asyncio.sleep(self.settings.mailing_poll_interval)
