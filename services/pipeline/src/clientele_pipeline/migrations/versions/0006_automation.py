"""Automation rules, their versions, firings and steps (the run log).

Revision ID: 0006
"""

from alembic import op
from clientele_pipeline.tables import (
    automation_firings,
    automation_rule_versions,
    automation_rules,
    automation_steps,
)
from clientele_shared.service_layer import create_append_only_table, drop_append_only_table

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    bind = op.get_bind()
    automation_rules.create(bind)
    create_append_only_table(bind, automation_rule_versions)
    automation_firings.create(bind)
    automation_steps.create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    automation_steps.drop(bind)
    automation_firings.drop(bind)
    drop_append_only_table(bind, automation_rule_versions)
    automation_rules.drop(bind)
