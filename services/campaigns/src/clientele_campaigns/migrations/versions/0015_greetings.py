"""Greetings (ADR 51): the professional holidays calendar (seeded with Russian holidays, all
editable), standing greetings, the once-a-year key of each greeting sent; the industry and the
time zone of organizations in the mailings' organizations read model (filled by each
organization's next snapshot, or ``clientele republish directory organizations``); the persons'
birthday (in ``mailing_contacts`` since 0006) indexed by month and day.

Revision ID: 0015_greetings
"""

import json
import uuid

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0015_greetings"
down_revision = "0014_event_kinds"

_SEED = uuid.UUID("6d1f2d4c-51a0-4f51-9d6e-000000000051")
HOLIDAYS = [
    ("День бухгалтера", {"kind": "fixed", "month": 11, "day": 21}, [], ["бухгалтер"]),
    (
        "День металлурга",
        {"kind": "weekday", "month": 7, "weekday": "sunday", "nth": 3},
        ["Металлургия"],
        [],
    ),
    (
        "День строителя",
        {"kind": "weekday", "month": 8, "weekday": "sunday", "nth": 2},
        ["Строительство"],
        [],
    ),
    (
        "День работников нефтяной и газовой промышленности",
        {"kind": "weekday", "month": 9, "weekday": "sunday", "nth": 1},
        ["Нефтегазовая промышленность"],
        [],
    ),
    (
        "День машиностроителя",
        {"kind": "weekday", "month": 9, "weekday": "sunday", "nth": -1},
        ["Машиностроение"],
        [],
    ),
    ("День энергетика", {"kind": "fixed", "month": 12, "day": 22}, ["Энергетика"], []),
    (
        "День химика",
        {"kind": "weekday", "month": 5, "weekday": "sunday", "nth": -1},
        ["Химическая промышленность"],
        [],
    ),
    (
        "День работника торговли",
        {"kind": "weekday", "month": 7, "weekday": "saturday", "nth": 4},
        ["Торговля"],
        [],
    ),
]
"""The defaults: each a row like any other (changed or deleted through the API)."""


def _versioned() -> list[sa.Column[object]]:
    now = sa.func.now()
    return [
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        sa.Column("updated_by", sa.String(200), nullable=False),
    ]


def upgrade() -> None:
    op.add_column("mailing_organizations", sa.Column("industry", sa.String(200)))
    op.add_column("mailing_organizations", sa.Column("time_zone", sa.String(64)))
    op.execute(
        "CREATE INDEX ix_mailing_contacts_birthday ON mailing_contacts "
        "((CAST(EXTRACT(month FROM birthday) AS INTEGER)), "
        "(CAST(EXTRACT(day FROM birthday) AS INTEGER))) WHERE birthday IS NOT NULL"
    )
    holidays = op.create_table(
        "professional_holidays",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("rule", JSONB, nullable=False),
        sa.Column(
            "industries", ARRAY(sa.String(100)), nullable=False, server_default=sa.text("'{}'")
        ),
        sa.Column(
            "positions", ARRAY(sa.String(200)), nullable=False, server_default=sa.text("'{}'")
        ),
        *_versioned(),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
        sa.Column("deleted_by", sa.String(200)),
    )
    assert holidays is not None
    op.bulk_insert(
        holidays,
        [
            {
                "id": uuid.uuid5(_SEED, name),
                "name": name,
                "rule": json.loads(json.dumps(rule)),
                "industries": industries,
                "positions": positions,
                "version": 1,
                "created_by": "seed",
                "updated_by": "seed",
            }
            for name, rule, industries, positions in HOLIDAYS
        ],
    )
    op.create_table(
        "greetings",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("directions", ARRAY(sa.String(64)), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("occasion", JSONB, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("html", sa.Text),
        sa.Column("text", sa.Text),
        sa.Column("template_id", sa.Uuid),
        sa.Column("template_version", sa.Integer),
        sa.Column("reply_to", sa.String(320)),
        sa.Column("audience", JSONB, nullable=False),
        sa.Column("send_at", sa.Time, nullable=False),
        sa.Column("time_zone", sa.String(64)),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True)),
        *_versioned(),
    )
    op.create_index("ix_greetings_directions", "greetings", ["directions"], postgresql_using="gin")
    op.create_index(
        "ix_greetings_due", "greetings", ["next_run_at"], postgresql_where=sa.text("active")
    )
    op.create_table(
        "greeting_sends",
        sa.Column("greeting_id", sa.Uuid, sa.ForeignKey("greetings.id"), primary_key=True),
        sa.Column("person_id", sa.Uuid, primary_key=True),
        sa.Column("occasion", sa.String(60), primary_key=True),
        sa.Column("year", sa.SmallInteger, primary_key=True),
        sa.Column("mailing_id", sa.Uuid, nullable=False),
        sa.Column("local_date", sa.Date, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )


def downgrade() -> None:
    op.drop_table("greeting_sends")
    op.drop_table("greetings")
    op.drop_table("professional_holidays")
    op.drop_index("ix_mailing_contacts_birthday", "mailing_contacts")
    op.drop_column("mailing_organizations", "time_zone")
    op.drop_column("mailing_organizations", "industry")
