"""Pipeline service settings."""

from clientele_shared.settings import ServiceSettings
from pydantic import Field


class PipelineSettings(ServiceSettings):
    service_name: str = "pipeline"
    http_port: int = 8003
    task_overdue_interval: float = Field(default=15.0, gt=0)
    """Seconds between scans for tasks newly past their deadline."""
    task_overdue_batch: int = Field(default=500, ge=1, le=10_000)
    task_reminder_lead_minutes: int = Field(default=15, ge=0, le=7 * 24 * 60)
    """How long before a task's deadline its assignee is reminded (through the notifier)."""
    board_sparse_matches: int = Field(default=500, ge=0)
    """Up to this many deals matching a board's filters, its pages come from the matches ranked
    per stage; beyond, each column is read in board order (where matches are dense)."""
    interactions_url: str = "http://127.0.0.1:8002"
    """The interactions service, where `schedule_interaction` actions plan contacts."""
    interactions_timeout: float = Field(default=5.0, gt=0)
    lead_repeat_hours: float = Field(default=72.0, ge=0, le=24 * 365)
    """A request from the e-mail or phone of an open lead of its direction received within this
    many hours is a repeat of that lead, not a new one."""
