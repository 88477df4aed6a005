"""The board's per-stage totals, kept by a trigger on deals; indexes of its filters (the
responsible employee, client names by trigram, contact persons).

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0004"
down_revision = "0003"

SHARDS = 64

_COUNT = """
    IF {row}.deleted_at IS NULL AND NOT {row}.client_hidden THEN
        INSERT INTO stage_totals AS t
            (pipeline_id, stage_id, currency, directions, shard, deals, amount)
        VALUES ({row}.pipeline_id, {row}.stage_id, coalesce({row}.currency, ''),
            {row}.directions, pg_backend_pid() % {shards},
            {sign}1, {sign}coalesce({row}.amount, 0))
        ON CONFLICT (stage_id, currency, directions, shard) DO UPDATE
            SET deals = t.deals + excluded.deals, amount = t.amount + excluded.amount;
    END IF;
"""


def upgrade() -> None:
    op.create_table(
        "stage_totals",
        sa.Column("pipeline_id", sa.Uuid, nullable=False),
        sa.Column("stage_id", sa.Uuid, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("directions", ARRAY(sa.String(64)), nullable=False),
        sa.Column("shard", sa.SmallInteger, nullable=False),
        sa.Column("deals", sa.Integer, nullable=False),
        sa.Column("amount", sa.Numeric(20, 2), nullable=False),
        sa.PrimaryKeyConstraint("stage_id", "currency", "directions", "shard"),
    )
    op.create_index("ix_stage_totals_pipeline", "stage_totals", ["pipeline_id"])
    op.create_index(
        "ix_deals_responsible",
        "deals",
        ["responsible_employee_id"],
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index("ix_deals_person_ids", "deals", ["person_ids"], postgresql_using="gin")
    for name in ("legal_name", "short_name"):
        op.create_index(
            f"ix_organizations_{name}_trgm",
            "organizations",
            [name],
            postgresql_using="gin",
            postgresql_ops={name: "gin_trgm_ops"},
        )
    subtract = _COUNT.format(row="OLD", sign="-", shards=SHARDS)
    add = _COUNT.format(row="NEW", sign="", shards=SHARDS)
    op.execute(
        f"""
        CREATE FUNCTION deals_stage_totals() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP IN ('UPDATE', 'DELETE') THEN {subtract} END IF;
            IF TG_OP IN ('UPDATE', 'INSERT') THEN {add} END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER deals_stage_totals_insert_delete AFTER INSERT OR DELETE ON deals"
        " FOR EACH ROW EXECUTE FUNCTION deals_stage_totals()"
    )
    op.execute(
        """
        CREATE TRIGGER deals_stage_totals_update AFTER UPDATE ON deals FOR EACH ROW
        WHEN ((OLD.pipeline_id, OLD.stage_id, OLD.currency, OLD.amount, OLD.directions,
               OLD.deleted_at IS NULL, OLD.client_hidden)
              IS DISTINCT FROM
              (NEW.pipeline_id, NEW.stage_id, NEW.currency, NEW.amount, NEW.directions,
               NEW.deleted_at IS NULL, NEW.client_hidden))
        EXECUTE FUNCTION deals_stage_totals()
        """
    )
    op.execute(
        f"""
        INSERT INTO stage_totals (pipeline_id, stage_id, currency, directions, shard, deals, amount)
        SELECT pipeline_id, stage_id, coalesce(currency, ''), directions,
            abs(hashtext(id::text)) % {SHARDS}, count(*), coalesce(sum(amount), 0)
        FROM deals WHERE deleted_at IS NULL AND NOT client_hidden
        GROUP BY 1, 2, 3, 4, 5
        """  # noqa: S608  # SHARDS is a constant
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER deals_stage_totals_update ON deals")
    op.execute("DROP TRIGGER deals_stage_totals_insert_delete ON deals")
    op.execute("DROP FUNCTION deals_stage_totals()")
    op.drop_table("stage_totals")
    op.drop_index("ix_deals_responsible", "deals")
    op.drop_index("ix_deals_person_ids", "deals")
    for name in ("legal_name", "short_name"):
        op.drop_index(f"ix_organizations_{name}_trgm", "organizations")
