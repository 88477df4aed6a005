"""Interactions service settings (environment variables, see the README)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Literal

from clientele_shared.storage import AttachmentStorageSettings
from pydantic import Field, SecretStr


class InteractionsSettings(AttachmentStorageSettings):
    service_name: str = "interactions"
    http_port: int = 8002
    # attachments (the storage's settings: clientele_shared.storage)
    attachments_dir: Path = Path(".state/attachments/interactions")
    """Where ``local`` storage keeps the bytes."""
    email_max_bytes: int = Field(default=26_214_400, ge=1024)
    email_max_parts: int = Field(default=1_000, ge=1, le=100_000)
    """MIME parts of a captured .eml (attachments of a .msg); more is a 422."""
    email_max_recipients: int = Field(default=5_000, ge=1, le=100_000)
    email_max_depth: int = Field(default=30, ge=1, le=200)
    """How deep the multiparts of a captured .eml may nest."""
    email_parse_workers: int = Field(default=2, ge=1, le=32)
    """Worker processes parsing captured message files (started at the first file)."""
    upload_overhead_bytes: int = Field(default=65_536, ge=0)
    """Room for the multipart framing around an uploaded file."""
    own_email_domains: list[str] = Field(default_factory=list)
    """The company's own mail domains: their addresses are never reported as unknown, and a
    message sent from one is outgoing."""

    # planning
    reminder_lead_minutes: int = Field(default=30, ge=0, le=7 * 24 * 60)
    overdue_worker: bool = True
    overdue_interval: float = Field(default=15.0, gt=0)
    overdue_batch: int = Field(default=500, ge=1, le=10_000)

    # summary
    summary_cache_ttl: int = Field(default=300, ge=0)
    summary_last: int = Field(default=10, ge=1, le=100)
    summary_next: int = Field(default=10, ge=1, le=100)

    # the IMAP poller (off unless IMAP_HOST is set)
    imap_host: str | None = None
    imap_port: int | None = Field(default=None, ge=1, le=65535)
    """Default 993 with ``ssl``, 143 otherwise."""
    imap_security: Literal["ssl", "starttls", "none"] = "ssl"
    imap_validate_certs: bool = True
    imap_ca_file: Path | None = None
    imap_username: str | None = None
    imap_password: SecretStr | None = None
    imap_mailbox: str = "INBOX"
    imap_poll_interval: float = Field(default=60.0, gt=0)
    imap_batch: int = Field(default=50, ge=1, le=1000)
    imap_timeout: float = Field(default=30.0, gt=0)
    imap_done_mailbox: str | None = None
    """Captured messages move here; without it they are only flagged \\Seen."""
    imap_actor: str = "imap"
    """The subject captured mail is attributed to (``created_by``, audit, events; a service
    principal that may write about every client)."""
    imap_employee_id: uuid.UUID | None = None
    """The responsible employee when no employee is among the message's addresses."""
