"""Interactions tables: the client read model plus the outbox and inbox."""

from clientele_shared.events.tables import inbox_table, outbox_table
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Uuid, func
from sqlalchemy.dialects.postgresql import ARRAY

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
)
