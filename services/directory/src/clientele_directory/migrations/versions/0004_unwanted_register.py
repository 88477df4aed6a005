"""The unwanted counterparty register.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"

TARGETS = ("organization_id", "person_id", "inn", "email_domain")


def upgrade() -> None:
    op.create_table(
        "unwanted_register",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("basis", sa.String(20), nullable=False),
        sa.Column("organization_id", sa.Uuid, sa.ForeignKey("organizations.id")),
        sa.Column("person_id", sa.Uuid, sa.ForeignKey("persons.id")),
        sa.Column("inn", sa.String(12)),
        sa.Column("email_domain", sa.String(255)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("decided_by", sa.String(200), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("removed_by", sa.String(200)),
        sa.Column("removed_at", sa.DateTime(timezone=True)),
        sa.Column("removal_reason", sa.Text),
        sa.CheckConstraint(
            "num_nonnulls(organization_id, person_id, inn, email_domain) = 1",
            name="ck_unwanted_register_one_target",
        ),
    )
    for target in TARGETS:
        op.create_index(
            f"ux_unwanted_register_{target}",
            "unwanted_register",
            [target],
            unique=True,
            postgresql_where=sa.text(f"removed_at IS NULL AND {target} IS NOT NULL"),
        )


def downgrade() -> None:
    op.drop_table("unwanted_register")
