"""Campaigns service settings."""

from clientele_shared.settings import ServiceSettings


class CampaignsSettings(ServiceSettings):
    service_name: str = "campaigns"
    http_port: int = 8004
    registrations_per_minute: int = 10
    """Public registrations one client address may send to one event a minute (429 beyond)."""
