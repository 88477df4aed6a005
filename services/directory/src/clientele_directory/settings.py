"""Directory service settings."""

from clientele_shared.settings import ServiceSettings


class DirectorySettings(ServiceSettings):
    service_name: str = "directory"
    http_port: int = 8001
