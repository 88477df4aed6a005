"""Stored templates, versioned, and the template (and version) a mailing was made from.

Revision ID: 0013_stored_templates
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0013_stored_templates"
down_revision = "0012_registrant_matching"


def upgrade() -> None:
    op.create_table(
        "mail_templates",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("directions", ARRAY(sa.String(64)), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("html", sa.Text),
        sa.Column("text", sa.Text),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("updated_by", sa.String(200), nullable=False),
    )
    op.create_index(
        "ix_mail_templates_directions", "mail_templates", ["directions"], postgresql_using="gin"
    )
    op.create_table(
        "mail_template_versions",
        sa.Column("template_id", sa.Uuid, sa.ForeignKey("mail_templates.id"), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("html", sa.Text),
        sa.Column("text", sa.Text),
        sa.Column(
            "saved_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("saved_by", sa.String(200), nullable=False),
    )
    op.add_column("mailings", sa.Column("template_id", sa.Uuid))
    op.add_column("mailings", sa.Column("template_version", sa.Integer))


def downgrade() -> None:
    op.drop_column("mailings", "template_version")
    op.drop_column("mailings", "template_id")
    op.drop_table("mail_template_versions")
    op.drop_table("mail_templates")
