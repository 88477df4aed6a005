"""The sequence that orders the snapshots of a record on the state topics (ADR 18).

Revision ID: 0018
"""

from alembic import op
from clientele_shared.events.state import create_state_revisions, drop_state_revisions

revision = "0018"
down_revision = "0017"


def upgrade() -> None:
    create_state_revisions(op.get_bind())


def downgrade() -> None:
    drop_state_revisions(op.get_bind())
