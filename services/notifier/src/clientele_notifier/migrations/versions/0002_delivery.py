"""Requests, deliveries and their attempt log, dead letters, webhook endpoints, reminders,
preferences; in-app notifications get a kind and data.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"


def _now() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )


def upgrade() -> None:
    op.add_column(
        "notifications",
        sa.Column("kind", sa.String(100), nullable=False, server_default="generic"),
    )
    op.add_column("notifications", sa.Column("data", JSONB, nullable=False, server_default="{}"))
    op.create_table(
        "requests",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("requester", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("event_id", sa.Uuid),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("content", JSONB, nullable=False),
        _now(),
        sa.UniqueConstraint("requester", "idempotency_key", name="uq_requests_idempotency"),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column(
            "request_id",
            sa.Uuid,
            sa.ForeignKey("requests.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("recipient_domain", sa.String(255)),
        sa.Column("employee_id", sa.String(200)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        _now(),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint("request_id", "recipient", "channel", name="uq_deliveries_once"),
    )
    op.create_index(
        "ix_deliveries_due",
        "deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("state IN ('pending', 'retry', 'sending')"),
    )
    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column(
            "delivery_id",
            sa.Uuid,
            sa.ForeignKey("deliveries.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("duration_ms", sa.Float),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_delivery_attempts_delivery", "delivery_attempts", ["delivery_id", "id"])
    op.create_table(
        "dead_letters",
        sa.Column(
            "delivery_id",
            sa.Uuid,
            sa.ForeignKey("deliveries.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        _now(),
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("secret_encrypted", sa.LargeBinary, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default="true"),
        sa.Column("timeout_seconds", sa.Float, nullable=False),
        sa.Column("max_attempts", sa.SmallInteger),
        sa.Column("description", sa.String(500)),
        _now(),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_table(
        "reminders",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("requester", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recipient", JSONB, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("text", sa.Text),
        sa.Column("payload", JSONB, nullable=False, server_default="{}"),
        sa.Column("changed_by_event_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True)),
        _now(),
    )
    op.create_index(
        "ix_reminders_due",
        "reminders",
        ["due_at"],
        postgresql_where=sa.text("state = 'scheduled'"),
    )
    op.create_table(
        "preferences",
        sa.Column("employee_id", sa.String(200), primary_key=True),
        sa.Column("channels", JSONB, nullable=False, server_default="{}"),
        sa.Column("quiet_start", sa.String(5)),
        sa.Column("quiet_end", sa.String(5)),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
        sa.Column("digest", sa.String(8), nullable=False, server_default="off"),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )


def downgrade() -> None:
    for table in (
        "preferences",
        "reminders",
        "webhook_endpoints",
        "dead_letters",
        "delivery_attempts",
        "deliveries",
        "requests",
    ):
        op.drop_table(table)
    op.drop_column("notifications", "data")
    op.drop_column("notifications", "kind")
