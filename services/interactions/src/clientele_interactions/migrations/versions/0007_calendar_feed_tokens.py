"""Secret feed URLs for calendar clients that cannot send a bearer token: one live token per
employee, kept hashed; rows stay after rotation or revocation (who issued and revoked when).

Revision ID: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_table(
        "calendar_feed_tokens",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("employee_id", sa.Uuid, nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_by", sa.String(200)),
    )
    op.create_index(
        "ux_calendar_feed_tokens_live",
        "calendar_feed_tokens",
        ["employee_id"],
        unique=True,
        postgresql_where=sa.text("revoked_at IS NULL"),
    )
    op.create_index(
        "ix_calendar_feed_tokens_employee", "calendar_feed_tokens", ["employee_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_table("calendar_feed_tokens")
