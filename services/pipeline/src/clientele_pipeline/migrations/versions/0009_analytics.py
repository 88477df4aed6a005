"""Analytics: each stage history row knows when the deal entered the stage it leaves (filled
for the rows already there), and the contacts about deals (a read model of interactions).

Revision ID: 0009_analytics
"""

from alembic import op
from sqlalchemy import Column, DateTime, Index, Uuid

revision = "0009_analytics"
down_revision = "0008_erp_documents"


def upgrade() -> None:
    op.add_column("deal_stage_history", Column("from_entered_at", DateTime(timezone=True)))
    # the history is append-only (a trigger); this one-time fill computes from the history itself
    op.execute("ALTER TABLE deal_stage_history DISABLE TRIGGER deal_stage_history_append_only")
    op.execute(
        """
        UPDATE deal_stage_history h SET from_entered_at = p.previous
        FROM (
            SELECT id, lag(moved_at) OVER (PARTITION BY deal_id ORDER BY id) AS previous
            FROM deal_stage_history
        ) p
        WHERE p.id = h.id AND h.from_stage_id IS NOT NULL
        """
    )
    op.execute("ALTER TABLE deal_stage_history ENABLE TRIGGER deal_stage_history_append_only")
    op.create_table(
        "deal_contacts",
        Column("interaction_id", Uuid, primary_key=True),
        Column("deal_id", Uuid, nullable=False),
        Column("organization_id", Uuid, nullable=False),
        Column("occurred_at", DateTime(timezone=True)),
        Index("ix_deal_contacts_deal", "deal_id"),
    )


def downgrade() -> None:
    op.drop_table("deal_contacts")
    op.drop_column("deal_stage_history", "from_entered_at")
