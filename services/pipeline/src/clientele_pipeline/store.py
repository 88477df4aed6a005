"""Pipeline tables: pipelines plus the outbox and inbox."""

from clientele_shared.events.tables import inbox_table, outbox_table
from sqlalchemy import Column, DateTime, MetaData, String, Table, Uuid, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

metadata = MetaData()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

pipelines = Table(
    "pipelines",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("stages", JSONB, nullable=False),
    Column("directions", ARRAY(String(64)), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
