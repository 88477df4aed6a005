"""Directory service settings."""

from clientele_shared.settings import ServiceSettings
from pydantic import Field


class DirectorySettings(ServiceSettings):
    service_name: str = "directory"
    http_port: int = 8001
    access_token_ttl_seconds: int = Field(
        default=3600, ge=60, le=86_400, description="lifetime of tokens from POST /v1/auth/token"
    )
    login_max_attempts: int = Field(
        default=5,
        ge=1,
        description="sign-in attempts per e-mail from one client address in the window (then 429)",
    )
    login_client_max_attempts: int = Field(
        default=50,
        ge=1,
        description="failed sign-ins from one client address in the window, any e-mail (then 429)",
    )
    login_window_seconds: int = Field(default=300, ge=1)
    search_word_similarity: float = Field(
        default=0.4,
        gt=0,
        le=1,
        description="pg_trgm similarity from which a known word counts as a typo of a search word",
    )
    import_max_bytes: int = Field(
        default=52_428_800, ge=1024, description="largest .xlsx/CSV upload (import, list members)"
    )
    upload_overhead_bytes: int = Field(
        default=65_536, ge=0, description="room for the multipart framing around an upload"
    )
    import_max_rows: int = Field(default=200_000, ge=1, description="rows of one import file")
    import_readers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="reader processes an import job's process may start (it runs one import;"
        " ADR 62, ADR 72)",
    )
    import_chunk_rows: int = Field(
        default=2500, ge=1, le=5000, description="rows an import matches and writes together"
    )
    import_vacuum_rows: int = Field(
        default=10_000,
        ge=1,
        description="rows a rolled-back import (dry run, rejected, failed) must have created or"
        " updated for its job to vacuum the tables after it (ADR 73)",
    )
    import_jobs_per_process: int = Field(
        default=2, ge=1, le=16, description="import jobs one directory process runs at a time"
    )
    import_job_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="a job's lease: renewed by its heartbeat, then another process takes it",
    )
    import_job_sweep_seconds: float = Field(
        default=15.0, gt=0, description="how often a process looks for jobs no live process runs"
    )
    import_job_max_attempts: int = Field(
        default=3, ge=1, description="runs of one job (its process died) before it fails"
    )
    import_jobs_kept_days: float = Field(
        default=30.0,
        gt=0,
        description="days a finished import job, its report and its file are kept, then removed",
    )
    import_job_prune_rows: int = Field(
        default=5000,
        ge=1,
        le=100_000,
        description="report lines of old jobs one transaction of the removal sweep deletes",
    )
