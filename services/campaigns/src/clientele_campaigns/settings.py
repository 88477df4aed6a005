"""Campaigns service settings."""

from pathlib import Path
from zoneinfo import ZoneInfo

from clientele_shared.storage import AttachmentStorageSettings
from pydantic import Field, field_validator


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
    fax_endpoint: str = Field(default="fax-gateway", pattern=r"^[a-z0-9][a-z0-9_.-]{0,99}$")
    """The notifier's webhook endpoint of the fax gateway: fax mailings are handed to it
    through the notifier (ADR 47)."""
    fax_callback_timeout_minutes: int = Field(default=60, ge=1, le=10_080)
    """A fax handed to the gateway whose callback has not come within this many minutes ends
    as failed (ADR 47)."""
    greeting_time_zone: str = "Europe/Moscow"
    """The company's time zone: a greeting's recipient with none of their own, their
    organization's or the greeting's is greeted at its send time there (ADR 51)."""
    greeting_sweep_interval: float = Field(default=300.0, ge=1.0, le=3600.0)
    """Seconds between two looks of the sweeper at one greeting (the granularity of send
    times)."""
    greeting_catch_up_days: int = Field(default=1, ge=0, le=7)
    """How many days late a greeting is still sent: a sweeper that was down for a
    recipient's whole local day greets them this many days after (ADR 51); 0: on the day only."""

    @field_validator("greeting_time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        ZoneInfo(value)  # an unknown zone fails the start
        return value
