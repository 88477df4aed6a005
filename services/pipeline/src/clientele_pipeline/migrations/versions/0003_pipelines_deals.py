"""Pipelines with ordered stages, deals, their stage history and audit trail, and the read
models of the directory (the shell's pipelines, stages kept as a JSON list, become stage rows).

Revision ID: 0003
"""

from alembic import op
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
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.engine import Connection

revision = "0003"
down_revision = "0002"


def _tables(metadata: MetaData) -> dict[str, Table]:
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
            Column("deleted_at", DateTime(timezone=True)),
            Column("deleted_by", String(200)),
        ]

    pipelines = Table(
        "pipelines",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("name", String(200), nullable=False),
        Column("directions", ARRAY(String(64)), nullable=False),
        Column("lost_reasons", ARRAY(String(100)), nullable=False, server_default=text("'{}'")),
        *_versioned(),
        Index("ix_pipelines_directions", "directions", postgresql_using="gin"),
    )

    stages = Table(
        "stages",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("pipeline_id", Uuid, ForeignKey("pipelines.id"), nullable=False),
        Column("position", SmallInteger, nullable=False),
        Column("name", String(200), nullable=False),
        Column("kind", String(20), nullable=False),
        Column("probability", SmallInteger, nullable=False),
        Column("expected_days", Integer),
        Column("color", String(7)),
        Column("required_fields", ARRAY(String(100)), nullable=False, server_default=text("'{}'")),
        Column("archived", Boolean, nullable=False, server_default=text("false")),
        Column("deleted", Boolean, nullable=False, server_default=text("false")),
        Index("ix_stages_pipeline", "pipeline_id", "position"),
    )

    deals = Table(
        "deals",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("pipeline_id", Uuid, ForeignKey("pipelines.id"), nullable=False),
        Column("stage_id", Uuid, ForeignKey("stages.id"), nullable=False),
        Column("status", String(10), nullable=False),
        Column("organization_id", Uuid, nullable=False),
        Column("title", String(500), nullable=False),
        Column("amount", Numeric(18, 2)),
        Column("currency", String(3)),
        Column("person_ids", ARRAY(Uuid), nullable=False, server_default=text("'{}'")),
        Column("primary_person_id", Uuid),
        Column("responsible_employee_id", Uuid),
        Column("directions", ARRAY(String(64)), nullable=False),
        Column("tags", ARRAY(String(100)), nullable=False, server_default=text("'{}'")),
        Column("custom_fields", JSONB, nullable=False, server_default=text("'{}'")),
        Column("expected_close_date", Date),
        Column("source", JSONB, nullable=False, server_default=text("'{}'")),
        Column("lost_reason", String(100)),
        Column("products", JSONB, nullable=False, server_default=text("'[]'")),
        Column("amount_from_products", Boolean, nullable=False, server_default=text("false")),
        Column(
            "stage_entered_at", DateTime(timezone=True), nullable=False, server_default=func.now()
        ),
        Column("closed_at", DateTime(timezone=True)),
        Column("client_blocked", Boolean, nullable=False, server_default=text("false")),
        Column("client_hidden", Boolean, nullable=False, server_default=text("false")),
        *_versioned(),
        Index("ix_deals_organization", "organization_id"),
        Index("ix_deals_stage", "stage_id"),
        Index(
            "ix_deals_board",
            "pipeline_id",
            "stage_id",
            text("created_at DESC"),
            text("id DESC"),
            postgresql_where=text("deleted_at IS NULL AND NOT client_hidden"),
        ),
        Index(
            "ix_deals_board_totals",
            "pipeline_id",
            "stage_id",
            "currency",
            postgresql_include=["amount", "directions"],
            postgresql_where=text("deleted_at IS NULL AND NOT client_hidden"),
        ),
        Index("ix_deals_directions", "directions", postgresql_using="gin"),
        Index("ix_deals_tags", "tags", postgresql_using="gin"),
        Index(
            "ix_deals_title_trgm",
            "title",
            postgresql_using="gin",
            postgresql_ops={"title": "gin_trgm_ops"},
        ),
    )

    deal_stage_history = Table(
        "deal_stage_history",
        metadata,
        Column("id", BigInteger, Identity(always=True), primary_key=True),
        Column("deal_id", Uuid, ForeignKey("deals.id"), nullable=False),
        Column("pipeline_id", Uuid, nullable=False),
        Column("from_stage_id", Uuid, ForeignKey("stages.id")),
        Column("to_stage_id", Uuid, ForeignKey("stages.id"), nullable=False),
        Column("moved_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("actor_subject", String(200), nullable=False),
        Column("actor_kind", String(20), nullable=False),
        Column("reason", Text),
        Column("deal_version", Integer, nullable=False),
        Index("ix_deal_stage_history_deal", "deal_id", "id"),
        Index("ix_deal_stage_history_to_stage", "to_stage_id", "moved_at"),
    )

    organizations = Table(
        "organizations",
        metadata,
        Column("organization_id", Uuid, primary_key=True),
        Column("legal_name", String(500), nullable=False),
        Column("short_name", String(500)),
        Column("inn", String(12)),
        Column("directions", ARRAY(String(64)), nullable=False, server_default=text("'{}'")),
        Column("blocked", Boolean, nullable=False, server_default=text("false")),
        Column("deleted", Boolean, nullable=False, server_default=text("false")),
        Column("merged_into", Uuid),
        Column("version", Integer, nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Index("ix_organizations_inn", "inn"),
    )

    persons = Table(
        "persons",
        metadata,
        Column("person_id", Uuid, primary_key=True),
        Column("last_name", String(200)),
        Column("first_name", String(200)),
        Column("middle_name", String(200)),
        Column("directions", ARRAY(String(64)), nullable=False, server_default=text("'{}'")),
        Column("blocked", Boolean, nullable=False, server_default=text("false")),
        Column("deleted", Boolean, nullable=False, server_default=text("false")),
        Column("merged_into", Uuid),
        Column("version", Integer, nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )

    employees = Table(
        "employees",
        metadata,
        Column("employee_id", Uuid, primary_key=True),
        Column("name", String(500), nullable=False),
        Column("email", String(320), nullable=False),
        Column("directions", ARRAY(String(64)), nullable=False, server_default=text("'{}'")),
        Column("active", Boolean, nullable=False, server_default=text("true")),
        Column("version", Integer, nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    return {
        "pipelines": pipelines,
        "stages": stages,
        "deals": deals,
        "deal_stage_history": deal_stage_history,
        "organizations": organizations,
        "persons": persons,
        "employees": employees,
    }


def upgrade() -> None:
    bind: Connection = op.get_bind()
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.rename_table("pipelines", "pipelines_shell")
    metadata = MetaData()
    tables = _tables(metadata)
    for name in ("pipelines", "stages", "deals", "organizations", "persons", "employees"):
        tables[name].create(bind)
    create_append_only_table(bind, tables["deal_stage_history"])
    create_append_only_table(bind, audit_table(metadata))
    op.execute(
        """
        INSERT INTO pipelines (id, name, directions, version, created_at, created_by, updated_by)
        SELECT id, name, directions, 1, created_at, 'migration', 'migration' FROM pipelines_shell
        """
    )
    op.execute(
        """
        INSERT INTO stages (id, pipeline_id, position, name, kind, probability)
        SELECT gen_random_uuid(), p.id, s.position - 1, s.name, 'open', 0
        FROM pipelines_shell p, jsonb_array_elements_text(p.stages) WITH ORDINALITY
            AS s(name, position)
        """
    )
    op.drop_table("pipelines_shell")


def downgrade() -> None:
    bind: Connection = op.get_bind()
    metadata = MetaData()
    tables = _tables(metadata)
    drop_append_only_table(bind, audit_table(metadata))
    drop_append_only_table(bind, tables["deal_stage_history"])
    for name in ("employees", "persons", "organizations", "deals", "stages", "pipelines"):
        tables[name].drop(bind)
    op.create_table(
        "pipelines",
        Column("id", Uuid, primary_key=True),
        Column("name", String(200), nullable=False),
        Column("stages", JSONB, nullable=False),
        Column("directions", ARRAY(String(64)), nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
