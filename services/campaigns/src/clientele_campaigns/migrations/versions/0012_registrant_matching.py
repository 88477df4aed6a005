"""A registrant matched to a known person by e-mail or phone: the contacts' match keys, the
registration's phone and person.

Revision ID: 0012_registrant_matching
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0012_registrant_matching"
down_revision = "0011_mailing_dynamic_audience"


def upgrade() -> None:
    op.add_column(
        "mailing_contacts",
        sa.Column(
            "match_keys", ARRAY(sa.String(340)), nullable=False, server_default=sa.text("'{}'")
        ),
    )
    op.execute(  # e-mail keys of the rows already kept; phones come with the next snapshot
        "UPDATE mailing_contacts SET match_keys = ARRAY(SELECT 'email:' || e FROM unnest(emails) e)"
    )
    op.create_index(
        "ix_mailing_contacts_match_keys",
        "mailing_contacts",
        ["match_keys"],
        postgresql_using="gin",
    )
    op.add_column("registrations", sa.Column("person_id", sa.Uuid))
    op.add_column("registrations", sa.Column("phone", sa.String(20)))


def downgrade() -> None:
    op.drop_column("registrations", "phone")
    op.drop_column("registrations", "person_id")
    op.drop_index("ix_mailing_contacts_match_keys", table_name="mailing_contacts")
    op.drop_column("mailing_contacts", "match_keys")
