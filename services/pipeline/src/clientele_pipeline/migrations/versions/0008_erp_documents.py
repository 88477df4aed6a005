"""ERP documents (invoices, payments, shipments) attached to deals and clients.

Revision ID: 0008_erp_documents
"""

from alembic import op
from sqlalchemy import (
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0008_erp_documents"
down_revision = "0007_tasks"


def upgrade() -> None:
    op.create_table(
        "erp_documents",
        Column("id", Uuid, primary_key=True),
        Column("kind", String(20), nullable=False),
        Column("document_id", String(200), nullable=False),
        Column("deal_id", Uuid, ForeignKey("deals.id")),
        Column("organization_id", Uuid, nullable=False),
        Column("inn", String(12)),
        Column("number", String(100), nullable=False),
        Column("document_date", Date, nullable=False),
        Column("amount", Numeric(18, 2), nullable=False),
        Column("currency", String(3), nullable=False),
        Column("lines", JSONB, nullable=False, server_default=text("'[]'")),
        Column("details", JSONB, nullable=False, server_default=text("'{}'")),
        Column("directions", ARRAY(String(64)), nullable=False),
        Column("event_id", Uuid, nullable=False),
        Column("revision", Integer, nullable=False, server_default=text("1")),
        Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        UniqueConstraint("kind", "document_id", name="uq_erp_documents_kind_document"),
        Index("ix_erp_documents_deal", "deal_id", "document_date"),
        Index("ix_erp_documents_organization", "organization_id", "document_date"),
    )


def downgrade() -> None:
    op.drop_table("erp_documents")
