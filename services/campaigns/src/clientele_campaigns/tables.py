"""Every table of the campaigns service (SQLAlchemy Core): marketing events (campaigns) with
their budget lines and stages, participants and their stage history, refused additions, the
audit trail, the read models of the directory, the outbox and the inbox."""

from clientele_shared.directory_read_models import directory_tables
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
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    Time,
    Uuid,
    cast,
    extract,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR

metadata = MetaData()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
audit_log = audit_table(metadata)
"""Append-only (a trigger refuses UPDATE and DELETE): one row per change of a campaign or
participant."""


def _versioned() -> list[Column[object]]:
    return [
        Column("version", Integer, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("created_by", String(200), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_by", String(200), nullable=False),
    ]


event_kinds = Table(
    "event_kinds",
    metadata,
    Column("code", String(30), primary_key=True),
    Column("name_ru", String(200), nullable=False),
    Column("name_en", String(200), nullable=False),
    Column("archived", Boolean, nullable=False, server_default=text("false")),
    *_versioned(),
)
"""The kinds of marketing events an administrator keeps (seminar, webinar...); archived ones
stay for the events that have them but are refused for new writes."""

campaigns = Table(
    "marketing_events",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("kind", String(30), ForeignKey("event_kinds.code"), nullable=False),
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
    Column("registration_open", Boolean, nullable=False, server_default=text("false")),
    *_versioned(),
    Column("deleted_at", DateTime(timezone=True)),
    Column("deleted_by", String(200)),
    Index("ix_marketing_events_directions", "directions", postgresql_using="gin"),
    Index("ix_marketing_events_planned_start", "planned_start"),
    Index("ix_marketing_events_kind", "kind"),
)
"""A marketing event (the API calls it a campaign) with its budget lines and stages: one
aggregate, a budget or stage change is a new version of the campaign."""

budget_lines = Table(
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
"""Planned and actual costs by category, each in its own currency (never converted)."""

campaign_stages = Table(
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
"""A deleted stage stays a row: the participants' stage history keeps naming it."""

participants = Table(
    "participants",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("campaign_id", Uuid, nullable=False),
    Column("stage_id", Uuid, nullable=False),
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
"""One organization (and optionally one of its persons) in one marketing event, at one stage;
``client_hidden`` while the directory has the organization or person deleted,
``client_blocked`` while it is in the unwanted register. No foreign keys: a list adds 100,000
rows at once and row-by-row checks were two thirds of it; the service writes participants only
under the event's lock and never deletes an event or a stage row (migration 0008)."""

participant_stage_history = Table(
    "participant_stage_history",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("participant_id", Uuid, nullable=False),
    Column("campaign_id", Uuid, nullable=False),
    Column("from_stage_id", Uuid),
    Column("to_stage_id", Uuid, nullable=False),
    Column("status", String(20), nullable=False),
    Column("moved_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("actor_subject", String(200), nullable=False),
    Index("ix_participant_stage_history_participant", "participant_id", "id"),
)
"""Append-only: every stage a participant entered (the first row has no ``from_stage_id``)
and its status then."""

refusals = Table(
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
"""Append-only: each addition refused (a blocked counterparty, an unknown or invisible one)."""

directory_lists = Table(
    "directory_lists",
    metadata,
    Column("list_id", Uuid, primary_key=True),
    Column("name", String(500), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("kind", String(20), nullable=False, server_default="static"),
    Column("filter", JSONB),
    Column("directions", ARRAY(String(64)), nullable=False, server_default="{}"),
    Column("deleted", Boolean, nullable=False, server_default="false"),
    Column("version", Integer, nullable=False, server_default="0"),
    Column("state_revision", BigInteger, nullable=False, server_default="0"),
)
"""Read model of the directory's lists, from its lists state topic (ADR 18)."""

directory_list_members = Table(
    "directory_list_members",
    metadata,
    Column("list_id", Uuid, primary_key=True),
    Column("organization_id", Uuid, primary_key=True),
    Column("version", Integer, nullable=False, server_default="0"),
    Column("state_revision", BigInteger, nullable=False, server_default="0"),
)
"""Read model of the static lists' members, from the list members state topic (a member may
arrive before its list: no foreign key)."""

list_resolutions = Table(
    "list_resolutions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("campaign_id", Uuid, ForeignKey("marketing_events.id"), nullable=False),
    Column("list_id", Uuid, nullable=False),
    Column("list_name", String(500), nullable=False),
    Column("list_kind", String(20), nullable=False, server_default="static"),
    Column("stage_id", Uuid, ForeignKey("campaign_stages.id"), nullable=False),
    Column("members", Integer, nullable=False),
    Column("added", Integer, nullable=False),
    Column("refused", Integer, nullable=False),
    Column("resolved_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("actor_subject", String(200), nullable=False),
    Index("ix_list_resolutions_campaign", "campaign_id", "resolved_at"),
)
"""Append-only: a list resolved into an event's participants at one moment."""

list_resolution_members = Table(
    "list_resolution_members",
    metadata,
    Column("resolution_id", Uuid, primary_key=True),
    Column("organization_id", Uuid, primary_key=True),
    Column("outcome", String(40), nullable=False),
)
"""Append-only: the list's members at that moment and what became of each (``added`` or the
reason it was refused)."""

registrations = Table(
    "registrations",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("campaign_id", Uuid, ForeignKey("marketing_events.id"), nullable=False),
    Column("code_hash", String(64), nullable=False, unique=True),
    Column("last_name", String(200), nullable=False),
    Column("first_name", String(200), nullable=False),
    Column("email", String(320), nullable=False),
    Column("organization_name", String(500), nullable=False),
    Column("inn", String(12)),
    Column("status", String(20), nullable=False),
    Column("organization_id", Uuid),
    Column("person_id", Uuid),
    Column("phone", String(20)),
    Column("participant_id", Uuid, ForeignKey("participants.id")),
    Column("registered_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("checked_in_at", DateTime(timezone=True)),
    Column("checked_in_by", String(200)),
    Index("ix_registrations_campaign", "campaign_id", "registered_at"),
)
"""Who registered through the public form: matched to a known organization (by INN) and added
as a participant, or kept for review; the ticket code is stored only as its SHA-256."""

DOCUMENT_SEARCH = (
    "setweight(to_tsvector('russian', regexp_replace(filename, '[._-]+', ' ', 'g')), 'A')"
    " || setweight(to_tsvector('russian', coalesce(description, '')), 'B')"
    " || setweight(to_tsvector('russian', coalesce(extracted_text, '')), 'C')"
)
documents = Table(
    "campaign_documents",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("campaign_id", Uuid, ForeignKey("marketing_events.id"), nullable=False),
    Column("category", String(20), nullable=False),
    Column("filename", String(255), nullable=False),
    Column("description", Text),
    Column("content_type", String(200), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("storage_key", String(500), nullable=False),
    Column("extracted_text", Text),
    Column("search", TSVECTOR, Computed(DOCUMENT_SEARCH, persisted=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("created_by", String(200), nullable=False),
    Index("ix_campaign_documents_campaign", "campaign_id", "created_at"),
    Index("ix_campaign_documents_search", "search", postgresql_using="gin"),
)
"""Files of an event (programme, presentations, contracts, photos); the bytes live in the
attachment storage (``clientele_shared.storage``) under ``<event>/<document>``; ``search``
holds the file name, description and extracted text (Russian and English stemming)."""

deals = Table(
    "deals",
    metadata,
    Column("deal_id", Uuid, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("organization_id", Uuid, nullable=False),
    Column("campaign_id", Uuid),
    Column("status", String(20), nullable=False),
    Column("amount", Numeric(18, 2)),
    Column("currency", String(3)),
    Column("directions", ARRAY(String(64)), nullable=False),
    Column("opened_at", DateTime(timezone=True)),
    Column("deleted", Boolean, nullable=False, server_default=text("false")),
    Index("ix_deals_campaign", "campaign_id"),
    Index("ix_deals_organization_opened", "organization_id", "opened_at"),
)
"""Read model of the pipeline's deals (from ``clientele.pipeline.deals``): who opened each,
when (its creation event's time), the marketing event its source names, status and amount."""

directory = directory_tables(metadata)
"""Read models of the directory's organizations, persons and employees."""

# --- mailings (issue 15, ADR 38): contacts, consent, mailings and their recipients ------------

mailing_contacts = Table(
    "mailing_contacts",
    metadata,
    Column("person_id", Uuid, primary_key=True),
    Column("emails", ARRAY(String(320)), nullable=False, server_default=text("'{}'")),
    Column("birthday", Date),
    Column("gender", String(10)),
    Column("attributes", JSONB, nullable=False, server_default=text("'{}'")),
    Column("employments", JSONB, nullable=False, server_default=text("'[]'")),
    Column("organization_ids", ARRAY(Uuid), nullable=False, server_default=text("'{}'")),
    Column("match_keys", ARRAY(String(340)), nullable=False, server_default=text("'{}'")),
    Column("version", Integer, nullable=False),
    Column("state_revision", BigInteger, nullable=False),
    Index("ix_mailing_contacts_organizations", "organization_ids", postgresql_using="gin"),
    Index("ix_mailing_contacts_match_keys", "match_keys", postgresql_using="gin"),
)
"""Read model of what a mailing needs of a person beyond ``persons`` (from the persons state
topic): addresses, birthday, custom attributes, live employments (organization and position);
``match_keys`` (``email:<address>``, ``phone:<E.164>``, the person's and their positions') find
a public registrant among known persons."""

BIRTHDAY_MONTH_DAY = (
    cast(extract("month", mailing_contacts.c.birthday), Integer),
    cast(extract("day", mailing_contacts.c.birthday), Integer),
)
"""A birthday's (month, day): greetings find the persons born on a day by it (ADR 51)."""
Index(
    "ix_mailing_contacts_birthday",
    *BIRTHDAY_MONTH_DAY,
    postgresql_where=mailing_contacts.c.birthday.is_not(None),
)

consents = Table(
    "consents",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("person_id", Uuid, nullable=False),
    Column("channel", String(10), nullable=False),
    Column("granted", Boolean, nullable=False),
    Column("source", String(20), nullable=False),
    Column("note", Text),
    Column("mailing_id", Uuid),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("actor_subject", String(200), nullable=False),
    Index("ix_consents_person", "person_id", "channel", "id"),
)
"""Append-only: every consent given or withdrawn; a person's consent for a channel is the
newest entry (none: no consent)."""

mail_templates = Table(
    "mail_templates",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(500), nullable=False),
    Column("directions", ARRAY(String(64)), nullable=False),
    Column("subject", Text, nullable=False),
    Column("html", Text),
    Column("text", Text),
    *_versioned(),
    Index("ix_mail_templates_directions", "directions", postgresql_using="gin"),
)
"""A stored template (subject, HTML and text parts) mailings are made from; each change a new
version, every version kept in ``mail_template_versions``."""

mail_template_versions = Table(
    "mail_template_versions",
    metadata,
    Column("template_id", Uuid, ForeignKey("mail_templates.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("name", String(500), nullable=False),
    Column("subject", Text, nullable=False),
    Column("html", Text),
    Column("text", Text),
    Column("saved_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("saved_by", String(200), nullable=False),
)

mailing_keys = Table(
    "mailing_keys",
    metadata,
    Column("id", SmallInteger, primary_key=True),
    Column("key", String(128), nullable=False),
)
"""The key unsubscribe tokens are signed with: made once by the first replica that needs it."""

mailings = Table(
    "mailings",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("campaign_id", Uuid, ForeignKey("marketing_events.id")),
    Column("title", String(500), nullable=False),
    Column("channel", String(10), nullable=False),
    Column("status", String(20), nullable=False),
    Column("directions", ARRAY(String(64)), nullable=False),
    Column("subject", Text, nullable=False),
    Column("html", Text),
    Column("text", Text),
    Column("attachments", JSONB, nullable=False, server_default=text("'[]'")),
    Column("reply_to", String(320)),
    Column("audience", JSONB, nullable=False),
    Column("scheduled_at", DateTime(timezone=True)),
    Column("prepared_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("recurrence", JSONB),
    Column("series_id", Uuid),
    Column("issue", Integer, nullable=False, server_default=text("1")),
    Column("post", JSONB),
    Column("letterhead", JSONB),
    Column("audience_organizations", ARRAY(Uuid)),
    Column("audience_resolved_at", DateTime(timezone=True)),
    Column("template_id", Uuid),
    Column("template_version", Integer),
    *_versioned(),
    Index("ix_mailings_directions", "directions", postgresql_using="gin"),
    Index("ix_mailings_due", "status", "scheduled_at"),
    Index("ix_mailings_series", "series_id", "issue"),
)
"""A mailing: its template (subject, HTML and text parts, attachments), its audience and its
state (``draft`` → ``scheduled`` → ``sending`` ⇄ ``paused`` → ``done``; ``cancelled``); a
recurring newsletter's issues share ``series_id`` (the first issue's id) and a ``recurrence``."""

mailing_recipients = Table(
    "mailing_recipients",
    metadata,
    Column("mailing_id", Uuid, ForeignKey("mailings.id"), primary_key=True),
    Column("person_id", Uuid, primary_key=True),
    Column("organization_id", Uuid),
    Column("email", String(320)),
    Column("status", String(20), nullable=False),
    Column("reason", String(40)),
    Column("detail", Text),
    Column("queued_at", DateTime(timezone=True)),
    Column("result_at", DateTime(timezone=True)),
    Index(
        "ix_mailing_recipients_pending",
        "mailing_id",
        "person_id",
        postgresql_where=text("status = 'pending'"),
    ),
    Index(
        "ix_mailing_recipients_queued",
        "queued_at",
        postgresql_where=text("status = 'queued'"),
    ),
)
"""The recipients resolved when the mailing started, kept: each one ``excluded`` (with the
reason), ``pending``, ``queued`` (handed to the notifier, once) and then ``sent``, ``bounced``
or ``failed``; ``printed`` (paper post: in the mailing's PDFs); ``cancelled`` when the mailing
was cancelled before its turn."""

mailing_prints = Table(
    "mailing_prints",
    metadata,
    Column("mailing_id", Uuid, ForeignKey("mailings.id"), primary_key=True),
    Column("campaign_id", Uuid),
    Column("letters", Integer, nullable=False),
    Column("pages", Integer, nullable=False),
    Column("sheets", Integer, nullable=False),
    Column("envelope", String(10), nullable=False),
    Column("envelopes", Integer, nullable=False),
    Column("toner_cartridges", Numeric(12, 2), nullable=False),
    Column("printed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_mailing_prints_campaign", "campaign_id"),
)
"""A paper mailing as printed (ADR 46): its letters' and envelopes' PDFs are in the storage
under ``mailings/<id>/``; the consumables they take count in the effectiveness report."""

mailing_organizations = Table(
    "mailing_organizations",
    metadata,
    Column("organization_id", Uuid, primary_key=True),
    Column("postal_address", JSONB),
    Column("fax", String(40)),
    Column("industry", String(200)),
    Column("time_zone", String(64)),
    Column("version", Integer, nullable=False),
    Column("state_revision", BigInteger, nullable=False),
)
"""Read model of what paper and fax mailings need of an organization (from its state topic):
the postal address (else the actual, else the legal one), the first fax number; the industry
and the time zone its attributes name (greetings, ADR 51)."""

# --- greetings (issue 15, ADR 51): the professional holidays calendar, standing greetings ------

professional_holidays = Table(
    "professional_holidays",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(500), nullable=False),
    Column("rule", JSONB, nullable=False),
    Column("industries", ARRAY(String(100)), nullable=False, server_default=text("'{}'")),
    Column("positions", ARRAY(String(200)), nullable=False, server_default=text("'{}'")),
    *_versioned(),
    Column("deleted_at", DateTime(timezone=True)),
    Column("deleted_by", String(200)),
)
"""The company's calendar of professional holidays (a fixed date or the nth weekday of a
month), each for the persons of some industries and positions; seeded with Russian ones."""

greetings = Table(
    "greetings",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("title", String(500), nullable=False),
    Column("directions", ARRAY(String(64)), nullable=False),
    Column("channel", String(10), nullable=False),
    Column("occasion", JSONB, nullable=False),
    Column("subject", Text, nullable=False),
    Column("html", Text),
    Column("text", Text),
    Column("template_id", Uuid),
    Column("template_version", Integer),
    Column("reply_to", String(320)),
    Column("audience", JSONB, nullable=False),
    Column("send_at", Time, nullable=False),
    Column("time_zone", String(64)),
    Column("active", Boolean, nullable=False),
    Column("next_run_at", DateTime(timezone=True)),
    *_versioned(),
    Index("ix_greetings_directions", "directions", postgresql_using="gin"),
    Index("ix_greetings_due", "next_run_at", postgresql_where=text("active")),
)
"""A standing greeting (birthday or professional holiday): its template, channel and audience;
the sweeper looks at it again at ``next_run_at`` (the persisted schedule)."""

greeting_sends = Table(
    "greeting_sends",
    metadata,
    Column("greeting_id", Uuid, ForeignKey("greetings.id"), primary_key=True),
    Column("person_id", Uuid, primary_key=True),
    Column("occasion", String(60), primary_key=True),
    Column("year", SmallInteger, primary_key=True),
    Column("mailing_id", Uuid, nullable=False),
    Column("local_date", Date, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("outcome", String(20), nullable=False, server_default="greeted"),
    Column("reason", String(40)),
)
"""A person greeted for an occasion in a year (the key that makes it once, across restarts and
replicas), and the day's mailing that holds the outcome (written just before that mailing, in
its transaction: no foreign key). ``outcome`` ``excluded`` (with the mailing's ``reason``) is
no greeting: the sweep tries again while the occasion's window lasts (ADR 51)."""
