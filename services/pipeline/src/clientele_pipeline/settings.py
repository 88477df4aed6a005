"""Pipeline service settings."""

from clientele_shared.settings import ServiceSettings


class PipelineSettings(ServiceSettings):
    service_name: str = "pipeline"
    http_port: int = 8003
