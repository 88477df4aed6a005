"""Campaigns tables: marketing events plus the outbox and inbox."""

from clientele_shared.events.tables import inbox_table, outbox_table
from sqlalchemy import Column, Date, DateTime, MetaData, Numeric, String, Table, Uuid, func
from sqlalchemy.dialects.postgresql import ARRAY

metadata = MetaData()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(300), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("planned_start", Date, nullable=False),
    Column("planned_end", Date, nullable=False),
    Column("budget_amount", Numeric(18, 2), nullable=False),
    Column("budget_currency", String(3), nullable=False),
    Column("directions", ARRAY(String(64)), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
