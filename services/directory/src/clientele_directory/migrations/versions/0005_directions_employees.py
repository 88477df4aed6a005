"""Directions and employees (with argon2 password hashes for the built-in token issuer).

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0005"
down_revision = "0004"

_EMPTY_ARRAY = sa.text("'{}'")


def _tracking() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("updated_by", sa.String(200)),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "directions",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("archived", sa.Boolean, nullable=False, server_default=sa.false()),
        *_tracking(),
    )
    op.create_table(
        "employees",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("roles", ARRAY(sa.String(40)), nullable=False, server_default=_EMPTY_ARRAY),
        sa.Column("directions", ARRAY(sa.String(64)), nullable=False, server_default=_EMPTY_ARRAY),
        sa.Column("manager_id", sa.Uuid, sa.ForeignKey("employees.id")),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("password_hash", sa.Text),
        sa.Column("password_changed_at", sa.DateTime(timezone=True)),
        *_tracking(),
    )
    op.create_index("ux_employees_email", "employees", [sa.text("lower(email)")], unique=True)
    op.create_index("ix_employees_directions", "employees", ["directions"], postgresql_using="gin")
    op.create_index("ix_employees_manager", "employees", ["manager_id"])


def downgrade() -> None:
    op.drop_table("employees")
    op.drop_table("directions")
