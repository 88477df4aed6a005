"""The primary key of ``organization_names`` becomes ``(organization_id, direction)`` instead of
``(direction, organization_id)`` (ADR 77).

The similar-name look-up asks a direction's partition for the names near a key
(``direction = :d AND name_key % :key``). A B-tree led by the direction offered the planner a
second way to them: every name of the direction, each compared with the key. It took that way
whenever its statistics counted few names there (a new installation or direction, whose tables
were analyzed empty by the migrations; a partition vacuumed empty after a dry run) while an
import was filling it, and it prices a trigram comparison at a small part of its cost. Led by
the organization, the key still holds the partition key (a partitioned table's key must) and
still serves the triggers' deletions (``direction = :code AND organization_id = ANY(:ids)``);
the trigram indexes are the only index to a direction's names near a key.

Revision ID: 0029
"""

from alembic import op

revision = "0029"
down_revision = "0028"


def upgrade() -> None:
    op.execute(
        "ALTER TABLE organization_names DROP CONSTRAINT organization_names_pkey,"
        " ADD CONSTRAINT organization_names_pkey PRIMARY KEY (organization_id, direction)"
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE organization_names DROP CONSTRAINT organization_names_pkey,"
        " ADD CONSTRAINT organization_names_pkey PRIMARY KEY (direction, organization_id)"
    )
