"""The outbox and inbox tables every service keeps in its own database."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection


def outbox_table(metadata: MetaData) -> Table:
    """Events written in the same transaction as the change they describe."""
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger, Identity(always=True), primary_key=True),
        Column("event_id", Uuid, nullable=False, unique=True),
        Column("topic", String(200), nullable=False),
        Column("key", String(200), nullable=False),
        Column("event_type", String(200), nullable=False),
        Column("value", LargeBinary, nullable=False),
        Column("headers", JSONB, nullable=False, server_default="{}"),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def inbox_table(metadata: MetaData) -> Table:
    """The events a consumer has applied: recorded in the same transaction as the effect."""
    return Table(
        "inbox",
        metadata,
        Column("consumer", String(200), nullable=False),
        Column("event_id", Uuid, nullable=False),
        Column("event_type", String(200), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("consumer", "event_id"),
        Index("ix_inbox_processed_at", "processed_at"),
    )


def inbox_attempts_table(metadata: MetaData) -> Table:
    """Events of a batch in flight after a restart, and how often each was tried alone.

    A row is written (committed) before its event is applied and deleted in the transaction that
    applies it, so a row that outlives its batch marks an event whose processing crashed.
    """
    return Table(
        "inbox_attempts",
        metadata,
        Column("consumer", String(200), nullable=False),
        Column("event_id", Uuid, nullable=False),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("marked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("consumer", "event_id"),
    )


def create_inbox_attempts_table(bind: Connection) -> None:
    """Create the crash-attempt marks of a service's inbox (a migration after the first)."""
    inbox_attempts_table(MetaData()).create(bind)


def drop_inbox_attempts_table(bind: Connection) -> None:
    inbox_attempts_table(MetaData()).drop(bind)


def create_backbone_tables(bind: Connection) -> None:
    """Create the outbox and inbox in a service's first migration."""
    backbone = MetaData()
    outbox_table(backbone)
    inbox_table(backbone)
    backbone.create_all(bind)


def drop_backbone_tables(bind: Connection) -> None:
    backbone = MetaData()
    outbox_table(backbone)
    inbox_table(backbone)
    backbone.drop_all(bind)
