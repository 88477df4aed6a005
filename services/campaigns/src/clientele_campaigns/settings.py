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
    # documents of an event (the storage's other settings: clientele_shared.storage)
    attachments_dir: Path = Path(".state/attachments/campaigns")
    attachment_max_bytes: int = Field(default=52_428_800, ge=1)
    """A document's largest size (presentations and photos are larger than mail attachments)."""
    upload_overhead_bytes: int = Field(default=65_536, ge=0)
    """Room for the multipart framing around an uploaded file."""
