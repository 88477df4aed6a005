"""Every table of the directory: its own state plus the outbox and inbox of the event backbone.

The migrations (``migrations/versions``) create these tables with explicit DDL; these
definitions are what the code reads and writes, and must agree with them.
"""

from clientele_shared.events.tables import inbox_table, outbox_table
from clientele_shared.service_layer import audit_table
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Computed,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

metadata = MetaData()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

organizations = Table(
    "organizations",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("legal_name", String(500), nullable=False),
    Column("short_name", String(500)),
    Column("country", String(2), nullable=False, server_default="RU"),
    Column("inn", String(12)),
    Column("kpp", String(9)),
    Column("ogrn", String(15)),
    Column("foreign_tax_id", String(200)),
    Column("legal_address", JSONB),
    Column("actual_address", JSONB),
    Column("postal_address", JSONB),
    Column("phones", JSONB, nullable=False, server_default="[]"),
    Column("emails", ARRAY(String(320)), nullable=False, server_default="{}"),
    Column("email_domains", ARRAY(String(255)), nullable=False, server_default="{}"),
    Column("sites", ARRAY(String(2048)), nullable=False, server_default="{}"),
    Column("industry", String(200)),
    Column("categories", ARRAY(String(100)), nullable=False, server_default="{}"),
    Column("tags", ARRAY(String(100)), nullable=False, server_default="{}"),
    Column("responsible_employee_id", Uuid),
    Column("status", String(20), nullable=False),
    Column("directions", ARRAY(String(64)), nullable=False),
    Column("attributes", JSONB, nullable=False, server_default="{}"),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_by", String(200)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("deleted_by", String(200)),
    Column("deleted_at", DateTime(timezone=True)),
    Column(
        "merged_into", Uuid, ForeignKey("organizations.id", name="fk_organizations_merged_into")
    ),
    Column(
        "search_text",
        Text,
        Computed(
            "directory_organization_document(legal_name, short_name, inn, kpp, ogrn, "
            "emails::text[], phones)",
            persisted=True,
        ),
    ),
    # the legal name folded and without its legal form, for similar names (migration 0013)
    Column("name_key", Text, Computed("directory_name_key(legal_name)", persisted=True)),
    Index("ix_organizations_inn", "inn"),
    Index("ix_organizations_directions", "directions", postgresql_using="gin"),
    Index("ix_organizations_email_domains", "email_domains", postgresql_using="gin"),
    Index("ix_organizations_tags", "tags", postgresql_using="gin"),
    Index("ix_organizations_categories", "categories", postgresql_using="gin"),
    Index("ix_organizations_responsible", "responsible_employee_id"),
    Index("ix_organizations_legal_name", "legal_name", "id"),
    Index(
        "ix_organizations_merged_into",
        "merged_into",
        postgresql_where=text("merged_into IS NOT NULL"),
    ),
)

organization_names = Table(
    "organization_names",
    metadata,
    Column("direction", String(64), nullable=False),
    Column("organization_id", Uuid, nullable=False),
    Column("name_key", Text, nullable=False),
    Column("has_inn", Boolean, nullable=False),
    PrimaryKeyConstraint("organization_id", "direction", name="organization_names_pkey"),
)
"""A live organization's name (``name_key``) per direction, for similar names: hash-partitioned
by direction with trigram indexes per partition, kept by triggers on ``organizations`` in the
same transaction as every write of them (migration 0024, ADR 57). Read only, by the look-ups.
Its key is led by the organization, so that the trigram indexes are the only index to a
direction's names (migration 0029, ADR 77)."""

persons = Table(
    "persons",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("last_name", String(200)),
    Column("first_name", String(200)),
    Column("middle_name", String(200)),
    Column("last_name_latin", String(200)),
    Column("first_name_latin", String(200)),
    Column("birthday", Date),
    Column("phones", JSONB, nullable=False, server_default="[]"),
    Column("emails", ARRAY(String(320)), nullable=False, server_default="{}"),
    Column("email_domains", ARRAY(String(255)), nullable=False, server_default="{}"),
    Column("consent", JSONB, nullable=False, server_default="{}"),
    Column("directions", ARRAY(String(64)), nullable=False, server_default="{}"),
    Column("attributes", JSONB, nullable=False, server_default="{}"),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_by", String(200)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("deleted_by", String(200)),
    Column("deleted_at", DateTime(timezone=True)),
    Column("merged_into", Uuid, ForeignKey("persons.id", name="fk_persons_merged_into")),
    Column(
        "search_text",
        Text,
        Computed(
            "directory_person_document(last_name, first_name, middle_name, "
            "last_name_latin, first_name_latin, emails::text[], phones)",
            persisted=True,
        ),
    ),
    Index("ix_persons_directions", "directions", postgresql_using="gin"),
    Index("ix_persons_email_domains", "email_domains", postgresql_using="gin"),
    Index("ix_persons_names", "last_name", "first_name", "id"),
    Index(
        "ix_persons_merged_into", "merged_into", postgresql_where=text("merged_into IS NOT NULL")
    ),
)
"""Duplicate candidates use expression indexes of migrations 0011 and 0015: a GiST trigram index
on ``directory_person_key`` (the name in Latin letters) of live persons, GIN indexes on
``directory_fold_emails(emails)`` (here and on employments) and on ``phones``."""

employments = Table(
    "employments",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("person_id", Uuid, ForeignKey("persons.id"), nullable=False),
    Column("organization_id", Uuid, ForeignKey("organizations.id"), nullable=False),
    Column("position", String(200)),
    Column("department", String(200)),
    Column("phones", JSONB, nullable=False, server_default="[]"),
    Column("emails", ARRAY(String(320)), nullable=False, server_default="{}"),
    Column("since", Date),
    Column("until", Date),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_by", String(200)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("deleted_by", String(200)),
    Column("deleted_at", DateTime(timezone=True)),
    Index("ix_employments_person", "person_id"),
    Index("ix_employments_organization", "organization_id"),
)
"""A person's positions; soft-deleted like the rest, so references and the audit stay whole."""

unwanted_register = Table(
    "unwanted_register",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("basis", String(20), nullable=False),
    Column("organization_id", Uuid, ForeignKey("organizations.id")),
    Column("person_id", Uuid, ForeignKey("persons.id")),
    Column("inn", String(12)),
    Column("email_domain", String(255)),
    Column("reason", Text, nullable=False),
    Column("decided_by", String(200), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("removed_by", String(200)),
    Column("removed_at", DateTime(timezone=True)),
    Column("removal_reason", Text),
)
"""Entries are never deleted: a removal keeps who removed it, when and why. At most one active
entry per target (partial unique indexes in migration 0004)."""

directions = Table(
    "directions",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("description", Text),
    Column("archived", Boolean, nullable=False, server_default="false"),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_by", String(200)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

employees = Table(
    "employees",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("email", String(320), nullable=False),
    Column("name", String(500), nullable=False),
    Column("roles", ARRAY(String(40)), nullable=False, server_default="{}"),
    Column("directions", ARRAY(String(64)), nullable=False, server_default="{}"),
    Column("manager_id", Uuid, ForeignKey("employees.id")),
    Column("active", Boolean, nullable=False, server_default="true"),
    Column("password_hash", Text),
    Column("password_changed_at", DateTime(timezone=True)),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_by", String(200)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_employees_directions", "directions", postgresql_using="gin"),
    Index("ix_employees_manager", "manager_id"),
)
"""The company's users; ``lower(email)`` is unique (migration 0005)."""

attribute_definitions = Table(
    "attribute_definitions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("entity_kind", String(20), nullable=False),
    Column("key", String(63), nullable=False),
    Column("label", String(200), nullable=False),
    Column("description", Text),
    Column("type", String(20), nullable=False),
    Column("required", Boolean, nullable=False, server_default="false"),
    Column("options", JSONB, nullable=False, server_default="[]"),
    Column("reference_kind", String(20)),
    Column("archived", Boolean, nullable=False, server_default="false"),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_by", String(200)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
"""Custom attributes; ``(entity_kind, key)`` is unique, archived ones included (migration 0007):
an archived attribute is restored, not defined again."""

organization_lists = Table(
    "organization_lists",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(500), nullable=False),
    Column("description", Text),
    Column("kind", String(20), nullable=False),
    Column("filter", JSONB),
    Column("directions", ARRAY(String(64)), nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_by", String(200)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("deleted_by", String(200)),
    Column("deleted_at", DateTime(timezone=True)),
    Index("ix_organization_lists_directions", "directions", postgresql_using="gin"),
)

organization_list_members = Table(
    "organization_list_members",
    metadata,
    Column("list_id", Uuid, ForeignKey("organization_lists.id"), primary_key=True),
    Column("organization_id", Uuid, ForeignKey("organizations.id"), primary_key=True),
    Column("added_by", String(200), nullable=False),
    Column("added_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_organization_list_members_organization", "organization_id"),
)
"""Members of static lists; a member the reader may not see is never shown to him."""

search_words = Table(
    "directory_search_words",
    metadata,
    Column("word", Text, primary_key=True),
)
"""Every word (letters, three or more) of the organizations' and persons' search documents, kept
by statement triggers (migration 0012): a search term is compared with these to find its typo'd
spellings."""

person_mailing_consents = Table(
    "person_mailing_consents",
    metadata,
    Column("person_id", Uuid, primary_key=True),
    Column("channel", String(10), primary_key=True),
    Column("granted", Boolean, nullable=False),
    Column("source", String(20), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("mailing_id", Uuid),
    Column("consent_id", BigInteger, nullable=False),
)
"""Campaigns' consent ledger as the directory sees it (``campaigns.consent.changed``): the
newest entry per person and channel, read-only on the person's card."""

address_reviews = Table(
    "address_reviews",
    metadata,
    Column("person_id", Uuid, primary_key=True),
    Column("email", String(320), primary_key=True),
    Column("mailing_id", Uuid, nullable=False),
    Column("reason", Text),
    Column("bounced_at", DateTime(timezone=True), nullable=False),
)
"""Addresses a mailing hard-bounced on (``campaigns.address.bounced``), marked for review on
the person's card while the person still has the address (the latest bounce per address)."""

audit_log = audit_table(metadata)
"""Append-only (a trigger refuses UPDATE and DELETE): one row per change of any record."""

import_jobs = Table(
    "import_jobs",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("state", String(16), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("kind", String(16), nullable=False, server_default=text("'organization'")),
    Column("filename", Text),
    Column("directions", ARRAY(String(64)), nullable=False),
    Column("overrides", JSONB, nullable=False),
    Column("replace_lists", Boolean, nullable=False, server_default=text("false")),
    Column("principal", JSONB, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
    Column("file_bytes", BigInteger, nullable=False),
    Column("total_rows", Integer),
    Column("rows_read", Integer, nullable=False, server_default=text("0")),
    Column("counts", JSONB, nullable=False, server_default=text("'{}'")),
    Column("header", JSONB),
    Column("source", JSONB),
    Column("problem", JSONB),
    Column("cancel_requested", Boolean, nullable=False, server_default=text("false")),
    Column("owner", Text),
    Column("lease_until", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("worker_pid", Integer),
)
"""Imports run as background jobs (ADR 41): who asked (``principal``, replayed by whichever
process runs it), the directions that see it, its progress and counts, the lease of the
process running it (``owner`` until ``lease_until``, renewed by its heartbeat) and the pid of
the child process its last run's rows ran in (``worker_pid``, ADR 62)."""

import_job_files = Table(
    "import_job_files",
    metadata,
    Column("job_id", Uuid, ForeignKey("import_jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("part", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
)
"""A job's uploaded file in parts of a MiB (written and read a part at a time), removed when
the job ends."""

import_job_lines = Table(
    "import_job_lines",
    metadata,
    Column("job_id", Uuid, ForeignKey("import_jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("rank", SmallInteger, primary_key=True),
    Column("row", Integer, primary_key=True),
    Column("line", JSONB, nullable=False),
    Column("cells", JSONB),
)
"""A job's report, a line per row worth reporting; ``rank`` 0 for rows with errors (listed
first), 1 for the others; ``cells`` the offending row as read, for the .xlsx report."""
