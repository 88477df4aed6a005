"""Campaigns service settings."""

from pathlib import Path

from clientele_shared.storage import AttachmentStorageSettings
from pydantic import Field


class CampaignsSettings(AttachmentStorageSettings):
    service_name: str = "campaigns"
    http_port: int = 8004
    registrations_per_minute: int = 10
    """Public registrations one client address may send to one event a minute (429 beyond)."""
    deal_attribution_days: int = Field(default=90, ge=0, le=3650)
    """A participant's deal opened up to this many days after an event's end is attributed to
    it (the effectiveness figures; a request may ask for another window)."""
    directory_url: str = "http://127.0.0.1:8001"
    """The directory service's API: a dynamic list is resolved there, as the caller (ADR 36)."""
    directory_timeout: float = Field(default=30.0, gt=0)
    dynamic_list_max_members: int = Field(default=100_000, ge=1, le=1_000_000)
    # documents of an event (the storage's other settings: clientele_shared.storage)
    attachments_dir: Path = Path(".state/attachments/campaigns")
    attachment_max_bytes: int = Field(default=52_428_800, ge=1)
    """A document's largest size (presentations and photos are larger than mail attachments)."""
    upload_overhead_bytes: int = Field(default=65_536, ge=0)
    """Room for the multipart framing around an uploaded file."""
    public_base_url: str = "http://localhost:8004"
    """Where recipients reach this service (the unsubscribe links of mailings); https in
    production (the one-click List-Unsubscribe-Post header needs it)."""
    run_mailing_worker: bool = True
    mailing_batch_size: int = 500
    """Recipients rendered and handed to the notifier in one transaction."""
    mailing_poll_interval: float = 1.0
    """Seconds the mailing worker sleeps when nothing is due or pending."""
    print_workers: int = Field(default=1, ge=1, le=32)
    """Worker processes rendering paper mailings' PDFs (CPU work, off the event loop)."""
    toner_cartridge_yield: int = Field(default=3000, ge=1)
    """Pages a toner cartridge prints at 5 % coverage (ISO/IEC 19752): the consumables
    estimate of paper mailings."""
    letterhead_max_bytes: int = Field(default=5_242_880, ge=1)
