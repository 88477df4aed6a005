"""Every table of the pipeline service (SQLAlchemy Core): pipelines and stages, deals and their
stage history, the audit trail, the read models of the directory, the outbox and the inbox."""

from clientele_shared.directory_read_models import directory_tables
from clientele_shared.events.tables import inbox_table, outbox_table
from clientele_shared.service_layer import audit_table
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

metadata = MetaData()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
audit_log = audit_table(metadata)
"""Append-only (a trigger refuses UPDATE and DELETE): one row per change of a pipeline or deal."""


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
"""A pipeline and its stages are one aggregate: a stage change is a new pipeline version."""

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
    Column("checklist", JSONB, nullable=False, server_default=text("'[]'")),
    Column("script", JSONB),
    Column("archived", Boolean, nullable=False, server_default=text("false")),
    Column("deleted", Boolean, nullable=False, server_default=text("false")),
    Index("ix_stages_pipeline", "pipeline_id", "position"),
)
"""A deleted stage stays a row: the stage history of deals that passed it keeps naming it."""

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
    Column("checklist_ticks", JSONB, nullable=False, server_default=text("'{}'")),
    Column("stage_entered_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
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
    Index("ix_deals_person_ids", "person_ids", postgresql_using="gin"),
    Index(
        "ix_deals_responsible",
        "responsible_employee_id",
        postgresql_where=text("deleted_at IS NULL"),
    ),
    Index(
        "ix_deals_title_trgm",
        "title",
        postgresql_using="gin",
        postgresql_ops={"title": "gin_trgm_ops"},
    ),
)
"""``client_blocked``: the organization is in the unwanted register; ``client_hidden``: it is
deleted in the directory (its deals come back when it is restored)."""

stage_totals = Table(
    "stage_totals",
    metadata,
    Column("pipeline_id", Uuid, nullable=False),
    Column("stage_id", Uuid, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("directions", ARRAY(String(64)), nullable=False),
    Column("shard", SmallInteger, nullable=False),
    Column("deals", Integer, nullable=False),
    Column("amount", Numeric(20, 2), nullable=False),
    PrimaryKeyConstraint("stage_id", "currency", "directions", "shard"),
    Index("ix_stage_totals_pipeline", "pipeline_id"),
)
"""Count and sum of the shown deals (live, client not deleted) per stage, currency ('' for
none) and direction set, kept by a trigger on ``deals`` (migration 0004). A change adds or
subtracts in the shard of its database connection (backend pid mod 64; only the sum over the
shards means anything), so concurrent writes in one stage rarely wait for the same row. The
board's totals without filters read it instead of aggregating every deal."""

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
"""Append-only: every stage a deal entered (the first row has no ``from_stage_id``), the input
of the analytics (time in stage is computed from it, never from the deal's mutable fields)."""

directory = directory_tables(metadata)
organizations, persons, employees = directory.organizations, directory.persons, directory.employees
"""Read models of the directory's organizations, persons and employees (version-guarded: never
older over newer)."""
for _name in ("legal_name", "short_name"):  # the board's client-name filter
    Index(
        f"ix_organizations_{_name}_trgm",
        organizations.c[_name],
        postgresql_using="gin",
        postgresql_ops={_name: "gin_trgm_ops"},
    )

"""Read model of the directory's employees (responsible employees of deals)."""

automation_rules = Table(
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
    Column("hook_secret", String(100)),
    *_versioned(),
    Index("ix_automation_rules_pipeline", "pipeline_id"),
)
"""A rule's current version; ``author``: the principal whose directions bound what it does."""

automation_rule_versions = Table(
    "automation_rule_versions",
    metadata,
    Column("rule_id", Uuid, ForeignKey("automation_rules.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("definition", JSONB, nullable=False),
    Column("author", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("rule_id", "version"),
)
"""Append-only: every version of every rule as it was (firings name the version they used)."""

automation_firings = Table(
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
"""One row per (rule, version, triggering event): a firing happens at most once; ``chain``
holds the rules fired earlier in the same causation chain (loop detection)."""

automation_steps = Table(
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
"""One row per action of a firing: done, skipped (with why) or failed (with the error)."""

automation_schedule = Table(
    "automation_schedule",
    metadata,
    Column("firing_id", Uuid, ForeignKey("automation_firings.id"), nullable=False),
    Column("position", SmallInteger, nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("done", Boolean, nullable=False, server_default=text("false")),
    PrimaryKeyConstraint("firing_id", "position"),
    Index("ix_automation_schedule_due", "due_at", postgresql_where=text("NOT done")),
)
"""Delayed actions of firings: taken when due by one replica (``FOR UPDATE SKIP LOCKED``)
and marked done in the transaction that runs them, so each runs once, across restarts."""

automation_calendars = Table(
    "automation_calendars",
    metadata,
    Column("scope", String(64), primary_key=True),
    Column("settings", JSONB),
    Column("days", JSONB, nullable=False, server_default=text("'{}'")),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_by", String(200), nullable=False),
)
"""Business calendars (ADR 34): the company's (scope ``*``) and a direction's own: working
week, hours and time zone (null: the company's), and own days off and working days."""

automation_watches = Table(
    "automation_watches",
    metadata,
    Column("rule_id", Uuid, ForeignKey("automation_rules.id"), nullable=False),
    Column("deal_id", Uuid, nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("basis", String(100), nullable=False),
    PrimaryKeyConstraint("rule_id", "deal_id"),
    Index("ix_automation_watches_due", "due_at"),
    Index("ix_automation_watches_deal", "deal_id"),
)
"""When a rule's date-field or inactivity trigger falls due for a deal (ADR 25, amended), and
what it was computed from (the date, or the last activity): recalculated on each deal event,
taken when due by one replica and deleted in the transaction of its firing."""

automation_recent_events = Table(
    "automation_recent_events",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("pipeline_id", Uuid, nullable=False),
    Column("deal_id", Uuid, nullable=False),
    Column("event_type", String(200), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("occurrences", JSONB, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_automation_recent_events_pipeline", "pipeline_id", "occurred_at"),
    Index("ix_automation_recent_events_recorded", "recorded_at"),
)
"""The events rules could fire on, as triggers see them, kept for a while (ADR 35): a rule is
tested against the last N of its pipeline before it is enabled."""
