"""Campaigns service settings."""

from clientele_shared.settings import ServiceSettings


class CampaignsSettings(ServiceSettings):
    service_name: str = "campaigns"
    http_port: int = 8004
    registrations_per_minute: int = 10
    """Public registrations one client address may send to one event a minute (429 beyond)."""
    public_base_url: str = "http://localhost:8004"
    """Where recipients reach this service (the unsubscribe links of mailings); https in
    production (the one-click List-Unsubscribe-Post header needs it)."""
    run_mailing_worker: bool = True
    mailing_batch_size: int = 500
    """Recipients rendered and handed to the notifier in one transaction."""
    mailing_poll_interval: float = 1.0
    """Seconds the mailing worker sleeps when nothing is due or pending."""
