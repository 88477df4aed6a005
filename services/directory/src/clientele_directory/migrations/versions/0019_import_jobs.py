"""Import jobs (ADR 41): the job, its stored file (in parts) and its report lines.

Revision ID: 0019
"""

from alembic import op

revision = "0019"
down_revision = "0018"


_STATEMENTS = [
    """
    CREATE TABLE import_jobs (
        id uuid PRIMARY KEY,
        state varchar(16) NOT NULL,
        mode varchar(16) NOT NULL,
        filename text,
        directions varchar(64)[] NOT NULL,
        overrides jsonb NOT NULL,
        principal jsonb NOT NULL,
        created_by varchar(200) NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz,
        file_bytes bigint NOT NULL,
        total_rows integer,
        rows_read integer NOT NULL DEFAULT 0,
        counts jsonb NOT NULL DEFAULT '{}',
        header jsonb,
        problem jsonb,
        cancel_requested boolean NOT NULL DEFAULT false,
        owner text,
        lease_until timestamptz,
        attempts integer NOT NULL DEFAULT 0
    )
    """,
    """
    CREATE INDEX ix_import_jobs_directions ON import_jobs USING gin (directions)
    """,
    """
    CREATE INDEX ix_import_jobs_unfinished ON import_jobs (lease_until)
        WHERE state IN ('queued', 'running')
    """,
    """
    CREATE TABLE import_job_files (
        job_id uuid NOT NULL REFERENCES import_jobs (id) ON DELETE CASCADE,
        part integer NOT NULL,
        data bytea NOT NULL,
        PRIMARY KEY (job_id, part)
    )
    """,
    """
    CREATE TABLE import_job_lines (
        job_id uuid NOT NULL REFERENCES import_jobs (id) ON DELETE CASCADE,
        rank smallint NOT NULL,
        row integer NOT NULL,
        line jsonb NOT NULL,
        cells jsonb,
        PRIMARY KEY (job_id, rank, row)
    )
    """,
]


def upgrade() -> None:
    for statement in _STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE import_job_lines, import_job_files, import_jobs")
