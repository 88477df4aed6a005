"""Directory tables: its own state plus the outbox and inbox of the event backbone."""

from clientele_shared.events.tables import inbox_table, outbox_table
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY

metadata = MetaData()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

organizations = Table(
    "organizations",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("legal_name", String(500), nullable=False),
    Column("short_name", String(500)),
    Column("inn", String(12)),
    Column("ogrn", String(15)),
    Column("status", String(20), nullable=False),
    Column("directions", ARRAY(String(64)), nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_organizations_inn", "inn"),
    Index("ix_organizations_directions", "directions", postgresql_using="gin"),
)
