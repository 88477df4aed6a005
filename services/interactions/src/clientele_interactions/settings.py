"""Interactions service settings."""

from clientele_shared.settings import ServiceSettings


class InteractionsSettings(ServiceSettings):
    service_name: str = "interactions"
    http_port: int = 8002
