"""Marketing events (campaigns) with budget lines and stages, participants, their stage history
and refused additions, the audit trail and the read models of the directory; the shell's
``campaigns`` table (never used) is dropped.

Revision ID: 0003
"""

from alembic import op
from clientele_shared.directory_read_models import directory_tables
from clientele_shared.service_layer import (
    audit_table,
    create_append_only_table,
    drop_append_only_table,
)
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection

revision = "0003"
down_revision = "0002"

APPEND_ONLY = ("participant_stage_history", "participant_refusals")


def _tables(metadata: MetaData) -> None:
    """The tables as this revision creates them (frozen: later revisions change them)."""

    def _versioned() -> list[Column[object]]:
        return [
            Column("version", Integer, nullable=False),
            Column(
                "created_at", DateTime(timezone=True), nullable=False, server_default=func.now()
            ),
            Column("created_by", String(200), nullable=False),
            Column(
                "updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()
            ),
            Column("updated_by", String(200), nullable=False),
        ]

    Table(
        "marketing_events",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("kind", String(30), nullable=False),
        Column("title", String(500), nullable=False),
        Column("status", String(20), nullable=False),
        Column("planned_start", DateTime(timezone=True), nullable=False),
        Column("planned_end", DateTime(timezone=True), nullable=False),
        Column("actual_start", DateTime(timezone=True)),
        Column("actual_end", DateTime(timezone=True)),
        Column("place", String(500)),
        Column("responsible_employee_id", Uuid),
        Column("directions", ARRAY(String(64)), nullable=False),
        Column("goals", ARRAY(String(500)), nullable=False, server_default=text("'{}'")),
        *_versioned(),
        Column("deleted_at", DateTime(timezone=True)),
        Column("deleted_by", String(200)),
        Index("ix_marketing_events_directions", "directions", postgresql_using="gin"),
        Index("ix_marketing_events_planned_start", "planned_start"),
    )

    Table(
        "budget_lines",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("campaign_id", Uuid, ForeignKey("marketing_events.id"), nullable=False),
        Column("position", SmallInteger, nullable=False),
        Column("category", String(20), nullable=False),
        Column("description", String(500)),
        Column("currency", String(3), nullable=False),
        Column("planned", Numeric(18, 2)),
        Column("actual", Numeric(18, 2)),
        Column("quantity", Numeric(18, 3)),
        Column("unit", String(100)),
        Index("ix_budget_lines_campaign", "campaign_id", "position"),
    )

    Table(
        "campaign_stages",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("campaign_id", Uuid, ForeignKey("marketing_events.id"), nullable=False),
        Column("position", SmallInteger, nullable=False),
        Column("name", String(200), nullable=False),
        Column("due_date", Date),
        Column("deleted", Boolean, nullable=False, server_default=text("false")),
        Index("ix_campaign_stages_campaign", "campaign_id", "position"),
    )

    Table(
        "participants",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("campaign_id", Uuid, ForeignKey("marketing_events.id"), nullable=False),
        Column("stage_id", Uuid, ForeignKey("campaign_stages.id"), nullable=False),
        Column("organization_id", Uuid, nullable=False),
        Column("person_id", Uuid),
        Column("status", String(20), nullable=False),
        Column("loyalty", SmallInteger),
        Column("partnership_interest", SmallInteger),
        Column("notes", Text),
        Column("follow_up", Boolean, nullable=False, server_default=text("false")),
        Column("client_blocked", Boolean, nullable=False, server_default=text("false")),
        Column("client_hidden", Boolean, nullable=False, server_default=text("false")),
        *_versioned(),
        Index("ix_participants_campaign", "campaign_id", "stage_id"),
        Index("ix_participants_organization", "organization_id"),
        Index("ix_participants_person", "person_id"),
        Index(
            "uq_participants_who",
            "campaign_id",
            "organization_id",
            text("coalesce(person_id, '00000000-0000-0000-0000-000000000000'::uuid)"),
            unique=True,
        ),
    )

    Table(
        "participant_stage_history",
        metadata,
        Column("id", BigInteger, Identity(always=True), primary_key=True),
        Column("participant_id", Uuid, ForeignKey("participants.id"), nullable=False),
        Column("campaign_id", Uuid, nullable=False),
        Column("from_stage_id", Uuid, ForeignKey("campaign_stages.id")),
        Column("to_stage_id", Uuid, ForeignKey("campaign_stages.id"), nullable=False),
        Column("status", String(20), nullable=False),
        Column("moved_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("actor_subject", String(200), nullable=False),
        Index("ix_participant_stage_history_participant", "participant_id", "id"),
    )

    Table(
        "participant_refusals",
        metadata,
        Column("id", BigInteger, Identity(always=True), primary_key=True),
        Column("campaign_id", Uuid, ForeignKey("marketing_events.id"), nullable=False),
        Column("organization_id", Uuid, nullable=False),
        Column("person_id", Uuid),
        Column("reason", String(40), nullable=False),
        Column("refused_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("actor_subject", String(200), nullable=False),
        Index("ix_participant_refusals_campaign", "campaign_id", "id"),
    )
    directory_tables(metadata)


def upgrade() -> None:
    bind: Connection = op.get_bind()
    op.drop_table("campaigns")
    metadata = MetaData()
    _tables(metadata)
    for table in metadata.sorted_tables:
        if table.name not in APPEND_ONLY:
            table.create(bind)
    for name in APPEND_ONLY:
        create_append_only_table(bind, metadata.tables[name])
    create_append_only_table(bind, audit_table(metadata))


def downgrade() -> None:
    bind: Connection = op.get_bind()
    metadata = MetaData()
    _tables(metadata)
    drop_append_only_table(bind, audit_table(metadata))
    for name in APPEND_ONLY:
        drop_append_only_table(bind, metadata.tables[name])
    for table in reversed(metadata.sorted_tables):
        if table.name not in APPEND_ONLY and table.name != "audit_log":
            table.drop(bind)
