"""Mailings: the contacts read model, the consent ledger, mailings and their recipients.

Revision ID: 0006_mailings
"""

from alembic import op
from clientele_shared.service_layer import create_append_only_table, drop_append_only_table
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

revision = "0006_mailings"
down_revision = "0007_deals"


def _versioned() -> list[Column[object]]:
    return [
        Column("version", Integer, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("created_by", String(200), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_by", String(200), nullable=False),
    ]


def _tables(metadata: MetaData) -> list[Table]:
    """The tables as this revision creates them (frozen: later revisions change them)."""
    Table("marketing_events", metadata, Column("id", Uuid, primary_key=True))
    return [
        Table(
            "mailing_contacts",
            metadata,
            Column("person_id", Uuid, primary_key=True),
            Column("emails", ARRAY(String(320)), nullable=False, server_default=text("'{}'")),
            Column("birthday", Date),
            Column("gender", String(10)),
            Column("attributes", JSONB, nullable=False, server_default=text("'{}'")),
            Column("employments", JSONB, nullable=False, server_default=text("'[]'")),
            Column("organization_ids", ARRAY(Uuid), nullable=False, server_default=text("'{}'")),
            Column("version", Integer, nullable=False),
            Column("state_revision", BigInteger, nullable=False),
            Index("ix_mailing_contacts_organizations", "organization_ids", postgresql_using="gin"),
        ),
        Table(
            "consents",
            metadata,
            Column("id", BigInteger, Identity(always=True), primary_key=True),
            Column("person_id", Uuid, nullable=False),
            Column("channel", String(10), nullable=False),
            Column("granted", Boolean, nullable=False),
            Column("source", String(20), nullable=False),
            Column("note", Text),
            Column("mailing_id", Uuid),
            Column(
                "recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()
            ),
            Column("actor_subject", String(200), nullable=False),
            Index("ix_consents_person", "person_id", "channel", "id"),
        ),
        Table(
            "mailing_keys",
            metadata,
            Column("id", SmallInteger, primary_key=True),
            Column("key", String(128), nullable=False),
        ),
        Table(
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
            *_versioned(),
            Index("ix_mailings_directions", "directions", postgresql_using="gin"),
            Index("ix_mailings_due", "status", "scheduled_at"),
        ),
        Table(
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
        ),
    ]


APPEND_ONLY = ("consents",)


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
