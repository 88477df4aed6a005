"""Leads (inbound requests), the source ids they were handed in under, their round-robin
turns per direction, employees' roles in the employees read model (who may be handed a lead).

Existing employees get their roles from the directory's employee states: ``clientele republish
directory employees`` (a snapshot of the same version is applied again).

Revision ID: 0018_leads
"""

from alembic import op
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0018_leads"
down_revision = "0017_persons_birthday"

_OPEN = text("status IN ('new', 'assigned')")


def upgrade() -> None:
    op.add_column(
        "employees",
        Column("roles", ARRAY(String(64)), nullable=False, server_default=text("'{}'")),
    )
    op.create_table(
        "leads",
        Column("id", Uuid, primary_key=True),
        Column("directions", ARRAY(String(64)), nullable=False),
        Column("source", String(20), nullable=False),
        Column("external_id", String(200)),
        Column("status", String(20), nullable=False),
        Column("contact_name", String(500)),
        Column("email", String(320)),
        Column("phone", String(32)),
        Column("company_name", String(500)),
        Column("inn", String(12)),
        Column("message", Text),
        Column("details", JSONB, nullable=False, server_default=text("'{}'")),
        Column("suggested_organization_id", Uuid),
        Column("assignee_employee_id", Uuid),
        Column("assigned_at", DateTime(timezone=True)),
        Column("repeats", Integer, nullable=False, server_default=text("0")),
        Column("last_message", Text),
        Column(
            "last_received_at", DateTime(timezone=True), nullable=False, server_default=func.now()
        ),
        Column("deal_id", Uuid),
        Column("reject_reason", String(20)),
        Column("reject_comment", Text),
        Column("version", Integer, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("created_by", String(200), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_by", String(200), nullable=False),
        Column("deleted_at", DateTime(timezone=True)),
        Column("deleted_by", String(200)),
    )
    op.create_index("ix_leads_directions", "leads", ["directions"], postgresql_using="gin")
    op.create_index("ix_leads_created", "leads", ["created_at"])
    op.create_index("ix_leads_email_open", "leads", ["email"], postgresql_where=_OPEN)
    op.create_index("ix_leads_phone_open", "leads", ["phone"], postgresql_where=_OPEN)
    op.create_table(
        "lead_external_ids",
        Column("direction", String(64), nullable=False),
        Column("source", String(20), nullable=False),
        Column("external_id", String(200), nullable=False),
        Column("lead_id", Uuid, nullable=False),
        PrimaryKeyConstraint("direction", "source", "external_id"),
    )
    op.create_index("ix_lead_external_ids_lead", "lead_external_ids", ["lead_id"])
    op.create_table(
        "lead_round_robin",
        Column("direction", String(64), primary_key=True),
        Column("turns", BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("lead_round_robin")
    op.drop_table("lead_external_ids")
    op.drop_table("leads")
    op.drop_column("employees", "roles")
