"""Campaigns' consent per person and channel, and hard-bounced addresses to review.

Revision ID: 0023
"""

from alembic import op

revision = "0023"
down_revision = "0022"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE person_mailing_consents (
            person_id uuid NOT NULL,
            channel varchar(10) NOT NULL,
            granted boolean NOT NULL,
            source varchar(20) NOT NULL,
            recorded_at timestamptz NOT NULL,
            mailing_id uuid,
            consent_id bigint NOT NULL,
            PRIMARY KEY (person_id, channel)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE address_reviews (
            person_id uuid NOT NULL,
            email varchar(320) NOT NULL,
            mailing_id uuid NOT NULL,
            reason text,
            bounced_at timestamptz NOT NULL,
            PRIMARY KEY (person_id, email)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE address_reviews")
    op.execute("DROP TABLE person_mailing_consents")
