"""Persons and their employments.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0003"
down_revision = "0002"

_EMPTY_ARRAY = sa.text("'{}'")


def _record_columns() -> list[sa.Column]:  # type: ignore[type-arg]
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
        sa.Column("deleted_by", sa.String(200)),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
    ]


def upgrade() -> None:
    op.create_table(
        "persons",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("last_name", sa.String(200)),
        sa.Column("first_name", sa.String(200)),
        sa.Column("middle_name", sa.String(200)),
        sa.Column("last_name_latin", sa.String(200)),
        sa.Column("first_name_latin", sa.String(200)),
        sa.Column("birthday", sa.Date),
        sa.Column("phones", JSONB, nullable=False, server_default="[]"),
        sa.Column("emails", ARRAY(sa.String(320)), nullable=False, server_default=_EMPTY_ARRAY),
        sa.Column(
            "email_domains", ARRAY(sa.String(255)), nullable=False, server_default=_EMPTY_ARRAY
        ),
        sa.Column("consent", JSONB, nullable=False, server_default="{}"),
        sa.Column("directions", ARRAY(sa.String(64)), nullable=False, server_default=_EMPTY_ARRAY),
        *_record_columns(),
    )
    op.create_index("ix_persons_directions", "persons", ["directions"], postgresql_using="gin")
    op.create_index(
        "ix_persons_email_domains", "persons", ["email_domains"], postgresql_using="gin"
    )
    op.create_index("ix_persons_names", "persons", ["last_name", "first_name", "id"])
    op.create_table(
        "employments",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("person_id", sa.Uuid, sa.ForeignKey("persons.id"), nullable=False),
        sa.Column("organization_id", sa.Uuid, sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("position", sa.String(200)),
        sa.Column("department", sa.String(200)),
        sa.Column("phones", JSONB, nullable=False, server_default="[]"),
        sa.Column("emails", ARRAY(sa.String(320)), nullable=False, server_default=_EMPTY_ARRAY),
        sa.Column("since", sa.Date),
        sa.Column("until", sa.Date),
        *_record_columns(),
    )
    op.create_index("ix_employments_person", "employments", ["person_id"])
    op.create_index("ix_employments_organization", "employments", ["organization_id"])


def downgrade() -> None:
    op.drop_table("employments")
    op.drop_table("persons")
