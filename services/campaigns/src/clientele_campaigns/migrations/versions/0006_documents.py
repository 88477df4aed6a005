"""Documents of a marketing event, searchable by name, description and extracted text.

Revision ID: 0006_documents
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TSVECTOR

revision = "0006_documents"
down_revision = "0005"

SEARCH = (
    "setweight(to_tsvector('russian', regexp_replace(filename, '[._-]+', ' ', 'g')), 'A')"
    " || setweight(to_tsvector('russian', coalesce(description, '')), 'B')"
    " || setweight(to_tsvector('russian', coalesce(extracted_text, '')), 'C')"
)


def upgrade() -> None:
    op.create_table(
        "campaign_documents",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("campaign_id", sa.Uuid, sa.ForeignKey("marketing_events.id"), nullable=False),
        sa.Column("category", sa.String(20), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("content_type", sa.String(200), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("storage_key", sa.String(500), nullable=False),
        sa.Column("extracted_text", sa.Text),
        sa.Column("search", TSVECTOR, sa.Computed(SEARCH, persisted=True)),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_index(
        "ix_campaign_documents_campaign", "campaign_documents", ["campaign_id", "created_at"]
    )
    op.create_index(
        "ix_campaign_documents_search", "campaign_documents", ["search"], postgresql_using="gin"
    )


def downgrade() -> None:
    op.drop_table("campaign_documents")
