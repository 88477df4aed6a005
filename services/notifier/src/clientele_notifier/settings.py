"""Notifier service settings (environment variables, e.g. SMTP_HOST, WEBHOOK_SECRETS_KEY)."""

from __future__ import annotations

from typing import Literal

from clientele_shared.settings import ServiceSettings
from pydantic import Field, SecretStr


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

    # retries per channel: attempts, first back-off (s); back-off doubles up to the maximum
    email_max_attempts: int = Field(default=8, ge=1)
    email_initial_backoff: float = Field(default=30.0, ge=0)
    webhook_max_attempts: int = Field(default=10, ge=1)
    webhook_initial_backoff: float = Field(default=10.0, ge=0)
    inapp_max_attempts: int = Field(default=5, ge=1)
    inapp_initial_backoff: float = Field(default=1.0, ge=0)
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
    reminder_reconcile_interval: float = Field(default=30.0, gt=0)
