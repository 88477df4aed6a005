"""Automation rules, their versions, firings and steps (the run log), delayed actions.

Revision ID: 0006
"""

from alembic import op
from clientele_shared.service_layer import create_append_only_table, drop_append_only_table
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0006"
down_revision = "0005"


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


def _tables() -> dict[str, Table]:
    metadata = MetaData()
    Table("pipelines", metadata, Column("id", Uuid, primary_key=True))  # exists: for the key
    Table(
        "automation_rules",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("pipeline_id", Uuid, ForeignKey("pipelines.id"), nullable=False),
        Column("stage_id", Uuid),
        Column("name", String(500), nullable=False),
        Column("enabled", Boolean, nullable=False),
        Column("definition", JSONB, nullable=False),
        Column("author_subject", String(200), nullable=False),
        Column("author", JSONB, nullable=False),
        *_versioned(),
        Index("ix_automation_rules_pipeline", "pipeline_id"),
    )

    Table(
        "automation_rule_versions",
        metadata,
        Column("rule_id", Uuid, ForeignKey("automation_rules.id"), nullable=False),
        Column("version", Integer, nullable=False),
        Column("definition", JSONB, nullable=False),
        Column("author", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("rule_id", "version"),
    )

    Table(
        "automation_firings",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("rule_id", Uuid, nullable=False),
        Column("rule_version", Integer, nullable=False),
        Column("event_id", Uuid, nullable=False),
        Column("deal_id", Uuid, nullable=False),
        Column("trigger", JSONB, nullable=False),
        Column("status", String(30), nullable=False),
        Column("reason", Text),
        Column("conditions", JSONB, nullable=False, server_default=text("'[]'")),
        Column("chain", ARRAY(Uuid), nullable=False, server_default=text("'{}'")),
        Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("duration_ms", Integer, nullable=False),
        UniqueConstraint("rule_id", "rule_version", "event_id", name="uq_automation_firings_key"),
        Index("ix_automation_firings_deal", "deal_id", "started_at"),
        Index("ix_automation_firings_rule", "rule_id", "started_at"),
        Index("ix_automation_firings_event", "event_id"),
    )

    Table(
        "automation_steps",
        metadata,
        Column("firing_id", Uuid, ForeignKey("automation_firings.id"), nullable=False),
        Column("position", SmallInteger, nullable=False),
        Column("kind", String(30), nullable=False),
        Column("status", String(10), nullable=False),
        Column("detail", JSONB, nullable=False, server_default=text("'{}'")),
        Column("error", Text),
        Column("duration_ms", Integer, nullable=False),
        PrimaryKeyConstraint("firing_id", "position"),
    )

    Table(
        "automation_schedule",
        metadata,
        Column("firing_id", Uuid, ForeignKey("automation_firings.id"), nullable=False),
        Column("position", SmallInteger, nullable=False),
        Column("due_at", DateTime(timezone=True), nullable=False),
        Column("done", Boolean, nullable=False, server_default=text("false")),
        PrimaryKeyConstraint("firing_id", "position"),
        Index("ix_automation_schedule_due", "due_at", postgresql_where=text("NOT done")),
    )
    return {name: metadata.tables[name] for name in NAMES}


NAMES = (
    "automation_rules",
    "automation_rule_versions",
    "automation_firings",
    "automation_steps",
    "automation_schedule",
)


def upgrade() -> None:
    bind = op.get_bind()
    tables = _tables()
    tables["automation_rules"].create(bind)
    create_append_only_table(bind, tables["automation_rule_versions"])
    tables["automation_firings"].create(bind)
    tables["automation_steps"].create(bind)
    tables["automation_schedule"].create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    tables = _tables()
    tables["automation_schedule"].drop(bind)
    tables["automation_steps"].drop(bind)
    tables["automation_firings"].drop(bind)
    drop_append_only_table(bind, tables["automation_rule_versions"])
    tables["automation_rules"].drop(bind)
