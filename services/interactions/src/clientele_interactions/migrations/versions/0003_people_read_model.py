"""Persons and employments as the directory publishes them (names, contacts, positions).

The tables of 0002 held no rows yet (nothing fed them); they are recreated in the shape of the
directory's person and employment events.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.drop_table("employments")
    op.drop_table("persons")
    op.create_table(
        "persons",
        sa.Column("person_id", sa.Uuid, primary_key=True),
        sa.Column("last_name", sa.String(200)),
        sa.Column("first_name", sa.String(200)),
        sa.Column("middle_name", sa.String(200)),
        sa.Column("last_name_latin", sa.String(200)),
        sa.Column("first_name_latin", sa.String(200)),
        sa.Column("emails", ARRAY(sa.String(320)), nullable=False, server_default=sa.text("'{}'")),
        sa.Column("phones", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column(
            "directions", ARRAY(sa.String(64)), nullable=False, server_default=sa.text("'{}'")
        ),
        sa.Column("blocked", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
    )
    op.create_index("ix_persons_emails", "persons", ["emails"], postgresql_using="gin")
    op.create_index("ix_persons_directions", "persons", ["directions"], postgresql_using="gin")
    op.create_table(
        "employments",
        sa.Column("employment_id", sa.Uuid, primary_key=True),
        sa.Column("person_id", sa.Uuid, nullable=False),
        sa.Column("organization_id", sa.Uuid, nullable=False),
        sa.Column("position", sa.String(300)),
        sa.Column("department", sa.String(300)),
        sa.Column("emails", ARRAY(sa.String(320)), nullable=False, server_default=sa.text("'{}'")),
        sa.Column("phones", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("since", sa.Date),
        sa.Column("until", sa.Date),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_employments_org", "employments", ["organization_id"])
    op.create_index("ix_employments_person", "employments", ["person_id"])
    op.create_index("ix_employments_emails", "employments", ["emails"], postgresql_using="gin")


def downgrade() -> None:
    op.drop_table("employments")
    op.drop_table("persons")
    op.create_table(
        "persons",
        sa.Column("person_id", sa.Uuid, primary_key=True),
        sa.Column("full_name", sa.String(500), nullable=False),
        sa.Column("emails", ARRAY(sa.String(320)), nullable=False, server_default=sa.text("'{}'")),
        sa.Column("phones", ARRAY(sa.String(64)), nullable=False, server_default=sa.text("'{}'")),
        sa.Column(
            "directions", ARRAY(sa.String(64)), nullable=False, server_default=sa.text("'{}'")
        ),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
    )
    op.create_table(
        "employments",
        sa.Column("employment_id", sa.Uuid, primary_key=True),
        sa.Column("person_id", sa.Uuid, nullable=False),
        sa.Column("organization_id", sa.Uuid, nullable=False),
        sa.Column("position", sa.String(300)),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("version", sa.Integer, nullable=False),
    )
