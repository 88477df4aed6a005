"""Campaigns service settings."""

from clientele_shared.settings import ServiceSettings


class CampaignsSettings(ServiceSettings):
    service_name: str = "campaigns"
    http_port: int = 8004
