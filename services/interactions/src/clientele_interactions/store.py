"""Interactions tables: the contact log and its audit trail, results, attachments, hand-overs,
read models of other services' data (client cards, persons, employees, and the summary's deals,
campaigns and ERP documents), plus the outbox and inbox."""

from clientele_shared.events.tables import inbox_table, outbox_table
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
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

client_cards = Table(
    "client_cards",
    metadata,
    Column("organization_id", Uuid, primary_key=True),
    Column("legal_name", String(500), nullable=False),
    Column("short_name", String(500)),
    Column("inn", String(12)),
    Column("status", String(20), nullable=False),
    Column("directions", ARRAY(String(64)), nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("blocked", Boolean, nullable=False, server_default=text("false")),
    Column("deleted", Boolean, nullable=False, server_default=text("false")),
    Column("merged_into", Uuid),
    Column("state_revision", BigInteger, nullable=False, server_default="0"),
    Index("ix_client_cards_directions", "directions", postgresql_using="gin"),
    Index(
        "ix_client_cards_merged_into",
        "merged_into",
        postgresql_where=text("merged_into IS NOT NULL"),
    ),
)
"""What interactions knows of an organization. ``blocked``: a match of the unwanted register;
``deleted``: soft-deleted in the directory (hidden, history kept); ``merged_into``: merged into
that organization (an alias: reads and writes follow it). Kept from the directory's state topic
(``CARDS``; ``version`` then ``state_revision`` order the snapshots) and its change events."""

# --- the contact log -------------------------------------------------------------------------

interaction_results = Table(
    "interaction_results",
    metadata,
    Column("kind", String(20), primary_key=True),
    Column("code", String(64), primary_key=True),
    Column("label", String(200), nullable=False),
    Column("position", Integer, nullable=False, server_default=text("0")),
    Column("follow_up_days", Integer),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("version", Integer, nullable=False, server_default=text("1")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

interactions = Table(
    "interactions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("organization_id", Uuid, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("direction", String(3), nullable=False),
    Column("status", String(20), nullable=False),
    Column("occurred_at", DateTime(timezone=True)),
    Column("due_at", DateTime(timezone=True)),
    Column("duration_seconds", Integer),
    Column("person_ids", ARRAY(Uuid), nullable=False, server_default=text("'{}'")),
    Column("responsible_employee_id", Uuid),
    Column("subject", String(500), nullable=False),
    Column("notes", Text),
    Column("result", String(64)),
    Column("deal_id", Uuid),
    Column("campaign_id", Uuid),
    Column("follows_id", Uuid),
    Column("source", String(20), nullable=False, server_default=text("'api'")),
    Column("message_id", String(998)),
    Column("overdue_at", DateTime(timezone=True)),
    Column("cancel_reason", String(500)),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("created_by", String(200), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_by", String(200), nullable=False),
    Index("ix_interactions_org_occurred", "organization_id", "occurred_at"),
    Index(
        "ix_interactions_org_due",
        "organization_id",
        "due_at",
        postgresql_where=text("status = 'planned'"),
    ),
    Index(
        "ix_interactions_overdue_scan",
        "due_at",
        postgresql_where=text("status = 'planned' AND overdue_at IS NULL"),
    ),
    Index("ix_interactions_responsible", "responsible_employee_id", "status"),
    Index("ix_interactions_person_ids", "person_ids", postgresql_using="gin"),
    Index(
        "ux_interactions_message",
        "organization_id",
        "message_id",
        unique=True,
        postgresql_where=text("message_id IS NOT NULL"),
    ),
)

interaction_audit = Table(
    "interaction_audit",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("interaction_id", Uuid, nullable=False),
    Column("version", Integer),
    Column("action", String(40), nullable=False),
    Column("actor_subject", String(200), nullable=False),
    Column("actor_kind", String(20), nullable=False),
    Column("correlation_id", String(128), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("changes", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("note", String(500)),
    Index("ix_interaction_audit_entity", "interaction_id", "id"),
)

attachments = Table(
    "attachments",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("interaction_id", Uuid, ForeignKey("interactions.id"), nullable=False),
    Column("filename", String(255), nullable=False),
    Column("content_type", String(200), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("storage_key", String(500), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("created_by", String(200), nullable=False),
    Index("ix_attachments_interaction", "interaction_id"),
)

unmatched_addresses = Table(
    "unmatched_addresses",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("seq", BigInteger, Identity(), nullable=False),
    Column("address", String(320), nullable=False),
    Column("display_name", String(500)),
    Column("role", String(4), nullable=False),
    Column("subject", String(500), nullable=False),
    Column("message_id", String(998)),
    Column("sent_at", DateTime(timezone=True)),
    Column("interaction_id", Uuid, ForeignKey("interactions.id")),
    Column("candidates", ARRAY(Uuid), nullable=False, server_default=text("'{}'")),
    Column("mailbox", String(500)),
    Column("status", String(10), nullable=False, server_default=text("'open'")),
    Column("person_id", Uuid),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("created_by", String(200), nullable=False),
    Column("resolved_at", DateTime(timezone=True)),
    Column("resolved_by", String(200)),
    CheckConstraint("role IN ('from', 'to', 'cc')", name="ck_unmatched_role"),
    CheckConstraint("status IN ('open', 'linked', 'dismissed')", name="ck_unmatched_status"),
    Index(
        "ux_unmatched_interaction_address",
        "interaction_id",
        "address",
        unique=True,
        postgresql_where=text("interaction_id IS NOT NULL"),
    ),
    Index(
        "ux_unmatched_uncaptured_message",
        "mailbox",
        "message_id",
        "address",
        unique=True,
        postgresql_where=text("interaction_id IS NULL AND message_id IS NOT NULL"),
    ),
    Index("ix_unmatched_open", "seq", postgresql_where=text("status = 'open'")),
)
"""Addresses of captured mail that matched no person, nor the company: of a captured interaction
(``interaction_id``), or of mailbox mail that found no client (``candidates``: the clients its
known persons work at, none or several). Open until linked to a person or dismissed."""

handovers = Table(
    "handovers",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("from_employee_id", Uuid, nullable=False),
    Column("to_employee_id", Uuid, nullable=False),
    Column("organization_id", Uuid),
    Column("reason", String(500)),
    Column("interactions_moved", Integer, nullable=False),
    Column("organizations", ARRAY(Uuid), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("created_by", String(200), nullable=False),
)

calendar_feed_tokens = Table(
    "calendar_feed_tokens",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("employee_id", Uuid, nullable=False),
    Column("secret_sha256", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("created_by", String(200), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("revoked_by", String(200)),
    Index(
        "ux_calendar_feed_tokens_live",
        "employee_id",
        unique=True,
        postgresql_where=text("revoked_at IS NULL"),
    ),
    Index("ix_calendar_feed_tokens_employee", "employee_id", "created_at"),
)
"""Secret calendar feed URLs: the token is the row id and a 32-byte secret, of which only the
SHA-256 is kept. One live token per employee; revoked and rotated ones stay as the trail."""

# --- the client summary ----------------------------------------------------------------------

summary_generations = Table(
    "summary_generations",
    metadata,
    Column("organization_id", Uuid, primary_key=True),
    Column("generation", BigInteger, nullable=False),
)
"""Bumped in the transaction of every change a client's summary shows; part of the cache key."""

persons = Table(
    "persons",
    metadata,
    Column("person_id", Uuid, primary_key=True),
    Column("last_name", String(200)),
    Column("first_name", String(200)),
    Column("middle_name", String(200)),
    Column("last_name_latin", String(200)),
    Column("first_name_latin", String(200)),
    Column("emails", ARRAY(String(320)), nullable=False, server_default=text("'{}'")),
    Column("phones", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("directions", ARRAY(String(64)), nullable=False, server_default=text("'{}'")),
    Column("blocked", Boolean, nullable=False, server_default=text("false")),
    Column("deleted", Boolean, nullable=False, server_default=text("false")),
    Column("merged_into", Uuid),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_persons_emails", "emails", postgresql_using="gin"),
    Index("ix_persons_directions", "directions", postgresql_using="gin"),
    Index(
        "ix_persons_merged_into", "merged_into", postgresql_where=text("merged_into IS NOT NULL")
    ),
)
"""Contact persons from the directory's person events (e-mails kept in lower case)."""

employments = Table(
    "employments",
    metadata,
    Column("employment_id", Uuid, primary_key=True),
    Column("person_id", Uuid, nullable=False),
    Column("organization_id", Uuid, nullable=False),
    Column("position", String(300)),
    Column("department", String(300)),
    Column("emails", ARRAY(String(320)), nullable=False, server_default=text("'{}'")),
    Column("phones", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("since", Date),
    Column("until", Date),
    Column("deleted", Boolean, nullable=False, server_default=text("false")),
    Column("version", Integer, nullable=False),
    Index("ix_employments_org", "organization_id"),
    Index("ix_employments_person", "person_id"),
    Index("ix_employments_emails", "emails", postgresql_using="gin"),
)
"""Who works where, in which position, from the directory's employment events."""

employees = Table(
    "employees",
    metadata,
    Column("employee_id", Uuid, primary_key=True),
    Column("name", String(500), nullable=False),
    Column("email", String(320), nullable=False),
    Column("roles", ARRAY(String(64)), nullable=False, server_default=text("'{}'")),
    Column("directions", ARRAY(String(64)), nullable=False, server_default=text("'{}'")),
    Column("manager_id", Uuid),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_employees_email", "email"),
)
"""The company's employees from the directory's employee events (e-mail in lower case)."""

client_deals = Table(
    "client_deals",
    metadata,
    Column("deal_id", Uuid, primary_key=True),
    Column("organization_id", Uuid, nullable=False),
    Column("title", String(500), nullable=False),
    Column("stage", String(200)),
    Column("status", String(20), nullable=False),
    Column("amount", Numeric(18, 2)),
    Column("currency", String(3)),
    Column("directions", ARRAY(String(64)), nullable=False, server_default=text("'{}'")),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_client_deals_org", "organization_id"),
)
"""The client's deals from the pipeline's deal events (readmodels.on_deal_event)."""

client_campaigns = Table(
    "client_campaigns",
    metadata,
    Column("campaign_id", Uuid, primary_key=True),
    Column("organization_id", Uuid, primary_key=True),
    Column("name", String(500), nullable=False),
    Column("status", String(40), nullable=False),
    Column("directions", ARRAY(String(64)), nullable=False, server_default=text("'{}'")),
    Column("occurred_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
"""Filled by the campaigns service's participation events (a later issue)."""

campaigns = Table(
    "campaigns",
    metadata,
    Column("campaign_id", Uuid, primary_key=True),
    Column("title", String(500), nullable=False),
    Column("directions", ARRAY(String(64)), nullable=False, server_default=text("'{}'")),
    Column("deleted", Boolean, nullable=False, server_default=text("false")),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
"""Marketing events from the campaigns service's events: what an interaction may refer to."""

client_erp_documents = Table(
    "client_erp_documents",
    metadata,
    Column("document_id", String(200), primary_key=True),
    Column("organization_id", Uuid, nullable=False),
    Column("kind", String(20), primary_key=True),
    Column("number", String(100)),
    Column("issued_on", DateTime(timezone=True)),
    Column("amount", Numeric(18, 2)),
    Column("currency", String(3)),
    Column("status", String(40)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("organization_id", "kind", "document_id", name="uq_client_erp_doc"),
    Index("ix_client_erp_documents_org", "organization_id", "issued_on"),
)
"""The ERP's invoices, payments and shipments of each client (``readmodels.on_erp_document``);
keyed by kind and the ERP's id, a correction replaces."""
