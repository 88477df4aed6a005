"""A list of 100,000 added in one go: the foreign keys a bulk addition checks row by row go
(two thirds of its time); the service writes these rows only under the event's lock, and their
parents are never deleted (events are soft-deleted, stages flagged, participants kept).

Revision ID: 0008_bulk_fks
"""

from alembic import op

revision = "0008_bulk_fks"
down_revision = "0006"

DROPPED = [
    ("participants", "campaign_id", "marketing_events"),
    ("participants", "stage_id", "campaign_stages"),
    ("participant_stage_history", "participant_id", "participants"),
    ("participant_stage_history", "from_stage_id", "campaign_stages"),
    ("participant_stage_history", "to_stage_id", "campaign_stages"),
    ("list_resolution_members", "resolution_id", "list_resolutions"),
]


def upgrade() -> None:
    for table, column, _ in DROPPED:
        op.drop_constraint(f"{table}_{column}_fkey", table, type_="foreignkey")


def downgrade() -> None:
    for table, column, parent in DROPPED:
        op.create_foreign_key(f"{table}_{column}_fkey", table, parent, [column], ["id"])
