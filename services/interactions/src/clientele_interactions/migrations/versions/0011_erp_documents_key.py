"""ERP documents on the client summary are keyed by kind and the ERP's id (ids are unique per
kind only: an invoice and a payment may share one).

Revision ID: 0011
"""

from alembic import op

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    op.drop_constraint("client_erp_documents_pkey", "client_erp_documents", type_="primary")
    op.create_primary_key(
        "client_erp_documents_pkey", "client_erp_documents", ["kind", "document_id"]
    )


def downgrade() -> None:
    op.drop_constraint("client_erp_documents_pkey", "client_erp_documents", type_="primary")
    op.create_primary_key("client_erp_documents_pkey", "client_erp_documents", ["document_id"])
