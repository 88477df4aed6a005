"""Tasks and their secret calendar feed tokens.

Revision ID: 0007_tasks
"""

from alembic import op
from sqlalchemy import Column, DateTime, ForeignKey, Index, Integer, String, Text, Uuid, func, text
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0007_tasks"
down_revision = "0006"


def _versioned() -> list[Column[object]]:
    return [
        Column("version", Integer, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("created_by", String(200), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_by", String(200), nullable=False),
        Column("deleted_at", DateTime(timezone=True)),
        Column("deleted_by", String(200)),
    ]


def upgrade() -> None:
    op.create_table(
        "tasks",
        Column("id", Uuid, primary_key=True),
        Column("title", String(500), nullable=False),
        Column("description", Text),
        Column("deadline", DateTime(timezone=True), nullable=False),
        Column("assignee_employee_id", Uuid, nullable=False),
        Column("priority", String(10), nullable=False),
        Column("status", String(10), nullable=False),
        Column("deal_id", Uuid, ForeignKey("deals.id")),
        Column("organization_id", Uuid),
        Column("directions", ARRAY(String(64)), nullable=False),
        Column("result", Text),
        Column("completed_at", DateTime(timezone=True)),
        Column("completed_by", String(200)),
        Column("overdue_at", DateTime(timezone=True)),
        *_versioned(),
        Index("ix_tasks_assignee", "assignee_employee_id", "status", "deadline"),
        Index("ix_tasks_deal", "deal_id", postgresql_where=text("deal_id IS NOT NULL")),
        Index("ix_tasks_organization", "organization_id", "assignee_employee_id"),
        Index("ix_tasks_directions", "directions", postgresql_using="gin"),
        Index(
            "ix_tasks_overdue_scan",
            "deadline",
            postgresql_where=text("status = 'open' AND overdue_at IS NULL AND deleted_at IS NULL"),
        ),
    )
    op.create_table(
        "task_feed_tokens",
        Column("id", Uuid, primary_key=True),
        Column("employee_id", Uuid, nullable=False),
        Column("secret_sha256", String(64), nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("created_by", String(200), nullable=False),
        Column("revoked_at", DateTime(timezone=True)),
        Column("revoked_by", String(200)),
        Index(
            "ux_task_feed_tokens_live",
            "employee_id",
            unique=True,
            postgresql_where=text("revoked_at IS NULL"),
        ),
        Index("ix_task_feed_tokens_employee", "employee_id", "created_at"),
    )


def downgrade() -> None:
    op.drop_table("task_feed_tokens")
    op.drop_table("tasks")
