"""Notifier tables: in-app inbox, requests and their deliveries with an attempt log, dead letters,
webhook endpoints, reminders, preferences, the employees read model, plus the outbox and inbox of
events."""

import uuid
from collections.abc import Iterable
from typing import Any

from clientele_shared.events.tables import inbox_table, outbox_table
from sqlalchemy import (
    BigInteger,
    BindParameter,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    bindparam,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

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
    Column("kind", String(100), nullable=False, server_default="generic"),
    Column("data", JSONB, nullable=False, server_default="{}"),
    Index("ix_notifications_recipient", "recipient", "created_at"),
)

requests = Table(
    "requests",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("requester", String(64), nullable=False),
    Column("idempotency_key", String(200), nullable=False),
    Column("event_id", Uuid),
    Column("kind", String(100), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("content", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("requester", "idempotency_key", name="uq_requests_idempotency"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("request_id", Uuid, ForeignKey("requests.id", ondelete="CASCADE"), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("recipient_domain", String(255)),
    Column("employee_id", String(200)),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("lease_until", DateTime(timezone=True)),
    Column("last_error", Text),
    Column("sent_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("request_id", "recipient", "channel", name="uq_deliveries_once"),
    Index(
        "ix_deliveries_due",
        "next_attempt_at",
        postgresql_where="state IN ('pending', 'retry', 'sending')",
    ),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("delivery_id", Uuid, ForeignKey("deliveries.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("detail", Text),
    Column("duration_ms", Float),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_delivery_attempts_delivery", "delivery_id", "id"),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column(
        "delivery_id",
        Uuid,
        ForeignKey("deliveries.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("reason", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("url", String(2000), nullable=False),
    Column("secret_encrypted", LargeBinary, nullable=False),
    Column("enabled", Boolean, nullable=False, server_default="true"),
    Column("timeout_seconds", Float, nullable=False),
    Column("max_attempts", SmallInteger),
    Column("description", String(500)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

reminders = Table(
    "reminders",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("requester", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("recipient", JSONB, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("kind", String(100), nullable=False),
    Column("subject", String(500), nullable=False),
    Column("text", Text),
    Column("payload", JSONB, nullable=False, server_default="{}"),
    Column("changed_by_event_at", DateTime(timezone=True), nullable=False),
    Column("fired_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_reminders_due", "due_at", postgresql_where="state = 'scheduled'"),
)

employees = Table(
    "employees",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("email", String(320)),
    Column("name", String(200)),
    Column("active", Boolean, nullable=False, server_default="true"),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
"""The directory's employees as events told them (a read model): e-mail address and state."""

preferences = Table(
    "preferences",
    metadata,
    Column("employee_id", String(200), primary_key=True),
    Column("channels", JSONB, nullable=False, server_default="{}"),
    Column("quiet_start", String(5)),
    Column("quiet_end", String(5)),
    Column("timezone", String(64), nullable=False, server_default="UTC"),
    Column("digest", String(8), nullable=False, server_default="off"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


def id_array(ids: Iterable[uuid.UUID]) -> BindParameter[Any]:
    """Ids as one array parameter, for ``column == any_(...)``: one statement (and one plan, an
    index lookup) however many ids there are."""
    values: Any = list(ids)
    return bindparam(None, values, type_=ARRAY(Uuid()))


def text_array(values: Iterable[str]) -> BindParameter[Any]:
    """Strings as one array parameter (see id_array)."""
    items: Any = list(values)
    return bindparam(None, items, type_=ARRAY(Text()))
