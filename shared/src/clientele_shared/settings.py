"""Settings every service reads from its environment (12-factor; no secrets in code)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from clientele_shared.auth.settings import AuthSettings
from clientele_shared.events.kafka import KafkaSecurity, SaslMechanism, SecurityProtocol


class ServiceSettings(BaseSettings):
    """Infrastructure addresses and HTTP limits; a service subclasses it for its own options."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    service_name: str = Field(default="", description="set by each service")
    database_url: SecretStr | None = Field(
        default=None, description="this service's database; else POSTGRES_URL/clientele_<service>"
    )
    postgres_url: SecretStr | None = Field(default=None, description="a PostgreSQL server URL")
    kafka_bootstrap_servers: str = "127.0.0.1:19092"
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None
    kafka_topic_replicas: int = Field(
        default=1,
        ge=1,
        description="replication factor of the topics a service finds missing and creates",
    )
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:16379/0")
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_level: str = "INFO"
    log_json: bool = True
    max_request_bytes: int = Field(default=1_048_576, ge=1024)
    metrics_token: SecretStr | None = Field(
        default=None, description="a bearer token the Prometheus scraper sends for /metrics"
    )
    idempotency_ttl_seconds: int = Field(
        default=86_400, ge=60, description="how long an Idempotency-Key's answer is kept (ADR 22)"
    )
    idempotency_max_response_bytes: int = Field(
        default=1_048_576, ge=1024, description="larger answers are not kept for replay"
    )
    database_pool_size: int = Field(
        default=20,
        ge=1,
        le=500,
        description="database connections a process keeps open; requests beyond them wait",
    )
    gc_young_threshold: int = Field(
        default=200_000,
        ge=700,
        description="allocations between collections of the youngest generation (ADR 15)",
    )
    outbox_batch_size: int = Field(default=500, ge=1, le=10_000)
    outbox_poll_interval: float = Field(default=1.0, gt=0)
    outbox_linger: float = Field(default=0.005, ge=0, le=1)
    consumer_max_attempts: int = Field(default=5, ge=1)
    consumer_batch_size: int = Field(default=500, ge=1, le=10_000)
    consumer_initial_backoff: float = Field(default=0.2, ge=0)
    inbox_retention_hours: float = Field(
        default=168.0, gt=0, description="keep processed inbox rows this long (past redelivery)"
    )
    inbox_prune_interval: float = Field(default=3600.0, gt=0, description="seconds between runs")
    run_relay: bool = True
    direction_feeds: bool = Field(
        default=True,
        description="copy events the ERP may read to per-direction feed topics (ADR 26)",
    )
    run_consumers: bool = True
    auth: AuthSettings = Field(default_factory=AuthSettings)

    def kafka_security(self) -> KafkaSecurity:
        return KafkaSecurity(
            protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            username=self.kafka_sasl_username,
            password=self.kafka_sasl_password,
            ssl_cafile=self.kafka_ssl_cafile,
        )

    def resolved_database_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        if self.postgres_url is None:
            raise ValueError("set DATABASE_URL or POSTGRES_URL")
        return f"{self.postgres_url.get_secret_value().rstrip('/')}/clientele_{self.service_name}"
