"""Notifier tables: the in-app inbox plus the outbox and inbox of events."""

from clientele_shared.events.tables import inbox_table, outbox_table
from sqlalchemy import Column, DateTime, Index, MetaData, String, Table, Text, Uuid, func

metadata = MetaData()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

notifications = Table(
    "notifications",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("recipient", String(200), nullable=False),
    Column("title", String(300), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("read_at", DateTime(timezone=True)),
    Index("ix_notifications_recipient", "recipient", "created_at"),
)
