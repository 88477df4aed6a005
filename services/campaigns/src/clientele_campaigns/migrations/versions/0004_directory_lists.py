"""The directory's static lists (read model) and their resolutions into events' participants.

Revision ID: 0004
"""

from alembic import op
from clientele_shared.service_layer import create_append_only_table, drop_append_only_table
from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    func,
)
from sqlalchemy.engine import Connection

revision = "0004"
down_revision = "0003"


def _tables(metadata: MetaData) -> list[Table]:
    """The tables as this revision creates them (frozen: later revisions change them)."""
    Table("marketing_events", metadata, Column("id", Uuid, primary_key=True))
    Table("campaign_stages", metadata, Column("id", Uuid, primary_key=True))
    return [
        Table(
            "directory_lists",
            metadata,
            Column("list_id", Uuid, primary_key=True),
            Column("name", String(500), nullable=False),
            Column(
                "updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()
            ),
        ),
        Table(
            "directory_list_members",
            metadata,
            Column("list_id", Uuid, ForeignKey("directory_lists.list_id"), primary_key=True),
            Column("organization_id", Uuid, primary_key=True),
        ),
        Table(
            "list_resolutions",
            metadata,
            Column("id", Uuid, primary_key=True),
            Column("campaign_id", Uuid, ForeignKey("marketing_events.id"), nullable=False),
            Column("list_id", Uuid, nullable=False),
            Column("list_name", String(500), nullable=False),
            Column("stage_id", Uuid, ForeignKey("campaign_stages.id"), nullable=False),
            Column("members", Integer, nullable=False),
            Column("added", Integer, nullable=False),
            Column("refused", Integer, nullable=False),
            Column(
                "resolved_at", DateTime(timezone=True), nullable=False, server_default=func.now()
            ),
            Column("actor_subject", String(200), nullable=False),
            Index("ix_list_resolutions_campaign", "campaign_id", "resolved_at"),
        ),
        Table(
            "list_resolution_members",
            metadata,
            Column("resolution_id", Uuid, ForeignKey("list_resolutions.id"), primary_key=True),
            Column("organization_id", Uuid, primary_key=True),
            Column("outcome", String(40), nullable=False),
        ),
    ]


APPEND_ONLY = ("list_resolutions", "list_resolution_members")


def upgrade() -> None:
    bind: Connection = op.get_bind()
    for table in _tables(MetaData()):
        if table.name in APPEND_ONLY:
            create_append_only_table(bind, table)
        else:
            table.create(bind)


def downgrade() -> None:
    bind: Connection = op.get_bind()
    for table in reversed(_tables(MetaData())):
        if table.name in APPEND_ONLY:
            drop_append_only_table(bind, table)
        else:
            table.drop(bind)
