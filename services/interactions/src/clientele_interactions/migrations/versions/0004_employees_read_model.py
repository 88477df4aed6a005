"""Employees as the directory publishes them (name, e-mail, roles, directions, manager, active).

The table of 0002 held no rows (nothing fed it); it is recreated in the shape of the events.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.drop_table("employees")
    op.create_table(
        "employees",
        sa.Column("employee_id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("roles", ARRAY(sa.String(64)), nullable=False, server_default=sa.text("'{}'")),
        sa.Column(
            "directions", ARRAY(sa.String(64)), nullable=False, server_default=sa.text("'{}'")
        ),
        sa.Column("manager_id", sa.Uuid),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
    )
    op.create_index("ix_employees_email", "employees", ["email"])


def downgrade() -> None:
    op.drop_table("employees")
    op.create_table(
        "employees",
        sa.Column("employee_id", sa.Uuid, primary_key=True),
        sa.Column("full_name", sa.String(500), nullable=False),
        sa.Column("email", sa.String(320)),
        sa.Column("subject", sa.String(200)),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("version", sa.Integer, nullable=False),
    )
