"""Every table of the pipeline service (SQLAlchemy Core): pipelines and stages, deals and their
stage history, the audit trail, the read models of the directory, the outbox and the inbox."""

from typing import Any

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
    Index("ix_deals_pipeline_created", "pipeline_id", "created_at"),
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
        "ix_deals_board_responsible",
        "pipeline_id",
        "responsible_employee_id",
        "stage_id",
        text("created_at DESC"),
        text("id DESC"),
        postgresql_include=["currency", "amount", "directions"],
        postgresql_where=text("deleted_at IS NULL AND NOT client_hidden"),
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
    Column("from_entered_at", DateTime(timezone=True)),
    Index("ix_deal_stage_history_deal", "deal_id", "id"),
    Index(
        "ix_deal_stage_history_to_stage",
        "to_stage_id",
        "moved_at",
        postgresql_include=["deal_id"],  # the wins read from the index alone (ADR 44)
    ),
    Index("ix_deal_stage_history_pipeline_moved", "pipeline_id", "moved_at"),
)
"""Append-only: every stage a deal entered (the first row has no ``from_stage_id``), the input
of the analytics (time in stage is computed from it, never from the deal's mutable fields):
``from_entered_at`` is when the deal had entered the stage it leaves (the previous row's
``moved_at``), so a stay's length is one subtraction in the row, without a window over the
history."""


def _analytics_totals(name: str, *measures: Column[Any]) -> Table:
    return Table(
        name,
        metadata,
        Column("pipeline_id", Uuid, nullable=False),
        Column("stage_id", Uuid, nullable=False),
        Column("directions", ARRAY(String(64)), nullable=False),
        Column("day", Date, nullable=False),
        Column("shard", SmallInteger, nullable=False),
        *measures,
        PrimaryKeyConstraint("stage_id", "directions", "day", "shard"),
        Index(f"ix_{name}_pipeline_day", "pipeline_id", "day"),
    )


stage_stay_totals = _analytics_totals(
    "stage_stay_totals",
    Column("stays", Integer, nullable=False),
    Column("seconds", Numeric, nullable=False),
)
"""Stays in a stage (from the stage history) of the shown deals per stage, direction set and
UTC day the stay ended: their number and their summed length in seconds. Kept by triggers on
``deal_stage_history`` and ``deals`` in the transaction of each move, deletion, restore or
direction change (migration 0016, ADR 44); summed over the shards like ``stage_totals``."""

funnel_totals = _analytics_totals("funnel_totals", Column("deals", Integer, nullable=False))
"""Shown deals per furthest open or won stage they entered, direction set and UTC day of their
creation (the funnel), kept by the same triggers; recomputed from the history when a stage's
position or kind changes (``analytics_funnel_rebuild``, ADR 44)."""


directory = directory_tables(metadata, birthdays=True, employee_roles=True)  # birthdays, leads
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

tasks = Table(
    "tasks",
    metadata,
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
"""Tasks of employees, linked to a deal and/or an organization; ``overdue_at``: when the open
task was found past its deadline (once per deadline: a new deadline clears it)."""

task_feed_tokens = Table(
    "task_feed_tokens",
    metadata,
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
"""Secret task calendar feed URLs (``clientele_shared.calendar_feeds``): the token is the row id
and a secret of which only the SHA-256 is kept; one live token per employee."""

erp_documents = Table(
    "erp_documents",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("document_id", String(200), nullable=False),
    Column("deal_id", Uuid, ForeignKey("deals.id")),
    Column("organization_id", Uuid, nullable=False),
    Column("inn", String(12)),
    Column("number", String(100), nullable=False),
    Column("document_date", Date, nullable=False),
    Column("amount", Numeric(18, 2), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("lines", JSONB, nullable=False, server_default=text("'[]'")),
    Column("details", JSONB, nullable=False, server_default=text("'{}'")),
    Column("directions", ARRAY(String(64)), nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("revision", Integer, nullable=False, server_default=text("1")),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("kind", "document_id", name="uq_erp_documents_kind_document"),
    Index("ix_erp_documents_deal", "deal_id", "document_date"),
    Index("ix_erp_documents_organization", "organization_id", "document_date"),
)
"""Invoices, payments and shipments the ERP published, attached to a deal and/or client; one
row per ERP document (a document sent again is a correction: ``revision`` counts them)."""

deal_contacts = Table(
    "deal_contacts",
    metadata,
    Column("interaction_id", Uuid, primary_key=True),
    Column("deal_id", Uuid, nullable=False),
    Column("organization_id", Uuid, nullable=False),
    Column("occurred_at", DateTime(timezone=True)),
    Index("ix_deal_contacts_deal", "deal_id"),
)
"""Read model of interactions: contacts that happened about a deal (logged, or planned and
completed), for the analytics' contacts per won deal."""

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

automation_round_robin = Table(
    "automation_round_robin",
    metadata,
    Column("rule_id", Uuid, primary_key=True),
    Column("turns", BigInteger, nullable=False),
)
"""How many tasks a rule handed out in turn (the next goes to employee ``turns`` mod n)."""

leads = Table(
    "leads",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("directions", ARRAY(String(64)), nullable=False),
    Column("source", String(20), nullable=False),
    Column("external_id", String(200)),
    Column("status", String(20), nullable=False),
    Column("contact_name", String(500)),
    Column("email", String(320)),
    Column("phone", String(32)),
    Column("company_name", String(500)),
    Column("inn", String(12)),
    Column("message", Text),
    Column("details", JSONB, nullable=False, server_default=text("'{}'")),
    Column("suggested_organization_id", Uuid),
    Column("assignee_employee_id", Uuid),
    Column("assigned_at", DateTime(timezone=True)),
    Column("repeats", Integer, nullable=False, server_default=text("0")),
    Column("last_message", Text),
    Column("last_received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("deal_id", Uuid),
    Column("reject_reason", String(20)),
    Column("reject_comment", Text),
    *_versioned(),
    Index("ix_leads_directions", "directions", postgresql_using="gin"),
    Index("ix_leads_created", "created_at"),
    Index("ix_leads_email_open", "email", postgresql_where=text("status IN ('new', 'assigned')")),
    Index("ix_leads_phone_open", "phone", postgresql_where=text("status IN ('new', 'assigned')")),
)
"""Inbound requests (ADR 69): one row per lead, its repeats counted on it; one direction each
(an array, as every direction-filtered table); ``external_id``: its first request's."""

lead_external_ids = Table(
    "lead_external_ids",
    metadata,
    Column("direction", String(64), nullable=False),
    Column("source", String(20), nullable=False),
    Column("external_id", String(200), nullable=False),
    Column("lead_id", Uuid, nullable=False),
    PrimaryKeyConstraint("direction", "source", "external_id"),
    Index("ix_lead_external_ids_lead", "lead_id"),
)
"""Every source id a lead was handed in under (its first request's and its repeats'), each
taken once per direction (two directions' connectors may number alike): the same id again in
the direction answers the lead."""

lead_round_robin = Table(
    "lead_round_robin",
    metadata,
    Column("direction", String(64), primary_key=True),
    Column("turns", BigInteger, nullable=False),
)
"""How many leads of a direction were handed out in turn (the next goes to employee ``turns``
mod n of its sales staff, ordered by id)."""
