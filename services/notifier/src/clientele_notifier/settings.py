"""Notifier service settings (environment variables, e.g. SMTP_HOST, WEBHOOK_SECRETS_KEY)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from clientele_shared.settings import ServiceSettings
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode


class NotifierSettings(ServiceSettings):
    service_name: str = "notifier"
    http_port: int = 8005

    # e-mail over SMTP
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "ssl"] = "none"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout: float = Field(default=30.0, gt=0)
    smtp_validate_certs: bool = True
    smtp_ca_file: str | None = None
    smtp_from: str = "Clientele <noreply@clientele.local>"
    message_id_domain: str = "clientele.local"
    attachment_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)

    # webhooks
    webhook_secrets_key: SecretStr | None = Field(
        default=None, description="Fernet key that encrypts endpoint secrets at rest"
    )
    webhook_timeout: float = Field(default=10.0, gt=0, le=120)
    webhook_allow_http: bool = Field(default=False, description="call http:// URLs, not only https")
    webhook_allow_private_networks: bool = Field(
        default=False,
        description="call addresses in private networks (10/8, 172.16/12, 192.168/16, "
        "100.64/10, fc00::/7), e.g. an on-premises ERP",
    )
    webhook_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="host names and IP addresses or networks called whatever they resolve to "
        "(loopback, link-local, metadata included): comma-separated or a JSON list",
    )

    # retries per channel: attempts, first back-off (s); back-off doubles up to the maximum
    email_max_attempts: int = Field(default=8, ge=1)
    email_initial_backoff: float = Field(default=30.0, ge=0)
    webhook_max_attempts: int = Field(default=10, ge=1)
    webhook_initial_backoff: float = Field(default=10.0, ge=0)
    retry_max_backoff: float = Field(default=3600.0, gt=0)

    # the delivery worker
    run_workers: bool = True
    worker_poll_interval: float = Field(default=0.5, gt=0)
    worker_batch_size: int = Field(default=50, ge=1, le=1000)
    worker_concurrency: int = Field(default=8, ge=1, le=256)
    delivery_lease: float = Field(default=120.0, gt=0, description="s before a claim expires")
    digest_check_interval: float = Field(default=60.0, gt=0)
    rate_limit_per_domain: int = Field(default=20, ge=1, description="deliveries per second")

    # reminders
    reminder_tick: float = Field(default=0.1, gt=0)
    reminder_firers: int = Field(
        default=2, ge=1, le=8, description="claims of due reminders under way at once"
    )
    reminder_reconcile_interval: float = Field(default=30.0, gt=0)

    @field_validator("webhook_allowed_hosts", mode="before")
    @classmethod
    def _host_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            items = json.loads(text) if text.startswith("[") else text.split(",")
            return [str(item).strip() for item in items if str(item).strip()]
        return value
