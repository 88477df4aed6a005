"""Kinds of marketing events as data: a catalogue an administrator edits (code, Russian and
English names, archived), seeded with the six kinds that were a fixed list; an event's kind
references a catalogue entry.

Revision ID: 0014_event_kinds
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_event_kinds"
down_revision = "0013_stored_templates"

DEFAULTS = [
    ("seminar", "Семинар", "Seminar"),
    ("conference", "Конференция", "Conference"),
    ("exhibition", "Выставка", "Exhibition"),
    ("webinar", "Вебинар", "Webinar"),
    ("mailing_campaign", "Рассылка", "Mailing campaign"),
    ("other", "Другое", "Other"),
]


def upgrade() -> None:
    kinds = op.create_table(
        "event_kinds",
        sa.Column("code", sa.String(30), primary_key=True),
        sa.Column("name_ru", sa.String(200), nullable=False),
        sa.Column("name_en", sa.String(200), nullable=False),
        sa.Column("archived", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("updated_by", sa.String(200), nullable=False),
    )
    op.bulk_insert(
        kinds,
        [
            {
                "code": code,
                "name_ru": ru,
                "name_en": en,
                "version": 1,
                "created_by": "migration",
                "updated_by": "migration",
            }
            for code, ru, en in DEFAULTS
        ],
    )
    op.create_foreign_key(
        "fk_marketing_events_kind", "marketing_events", "event_kinds", ["kind"], ["code"]
    )
    op.create_index("ix_marketing_events_kind", "marketing_events", ["kind"])


def downgrade() -> None:
    op.drop_index("ix_marketing_events_kind", "marketing_events")
    op.drop_constraint("fk_marketing_events_kind", "marketing_events")
    op.drop_table("event_kinds")
