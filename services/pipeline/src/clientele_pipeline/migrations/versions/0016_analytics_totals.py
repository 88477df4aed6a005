"""The sales analytics' per-stage, per-day totals, kept by triggers and backfilled (ADR 44).

Revision ID: 0016_analytics_totals
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0016_analytics_totals"
down_revision = "0015_automation_round_robin"

SHARDS = 64
SHOWN = "{row}.deleted_at IS NULL AND NOT {row}.client_hidden"
DAY = "(({moment}) AT TIME ZONE 'UTC')::date"
STAY = "extract(epoch FROM {h}.moved_at - {h}.from_entered_at)"
ADD_STAYS = """
    ON CONFLICT (stage_id, directions, day, shard) DO UPDATE
        SET stays = t.stays + excluded.stays, seconds = t.seconds + excluded.seconds
"""
ADD_DEALS = """
    ON CONFLICT (stage_id, directions, day, shard) DO UPDATE SET deals = t.deals + excluded.deals
"""
FURTHEST = """
    SELECT s.id, s.position FROM deal_stage_history h JOIN stages s ON s.id = h.to_stage_id
    WHERE h.deal_id = {deal} AND s.kind IN ('open', 'won') {besides}
    ORDER BY s.position DESC, s.id DESC LIMIT 1
"""
SHARD = f"pg_backend_pid() % {SHARDS}"
PRIOR = FURTHEST.format(deal="NEW.deal_id", besides="AND h.id <> NEW.id")

FUNCTIONS = [  # constants only, no input: S608 does not apply
    # A deal's whole share (its stays and its furthest stage), added or subtracted.
    f"""
    CREATE FUNCTION analytics_deal_totals(
        p_deal uuid, p_pipeline uuid, p_directions varchar(64)[], p_created timestamptz,
        p_sign int
    ) RETURNS void LANGUAGE sql AS $$
        INSERT INTO stage_stay_totals AS t
            (pipeline_id, stage_id, directions, day, shard, stays, seconds)
        SELECT p_pipeline, h.from_stage_id, p_directions, {DAY.format(moment="h.moved_at")},
            {SHARD}, p_sign * count(*), p_sign * sum({STAY.format(h="h")})
        FROM deal_stage_history h
        WHERE h.deal_id = p_deal AND h.from_stage_id IS NOT NULL
            AND h.from_entered_at IS NOT NULL
        GROUP BY h.from_stage_id, {DAY.format(moment="h.moved_at")}
        {ADD_STAYS};
        INSERT INTO funnel_totals AS t (pipeline_id, stage_id, directions, day, shard, deals)
        SELECT p_pipeline, f.id, p_directions, {DAY.format(moment="p_created")}, {SHARD}, p_sign
        FROM ({FURTHEST.format(deal="p_deal", besides="")}) f
        {ADD_DEALS};
    $$
    """,  # noqa: S608
    # A stage history row: its stay, and the deal's furthest stage when it goes further.
    f"""
    CREATE FUNCTION deal_stage_history_totals() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        deal record;
        entered record;
        prior record;
    BEGIN
        SELECT directions, created_at, {SHOWN.format(row="deals")} AS shown INTO deal
        FROM deals WHERE id = NEW.deal_id;
        IF NOT deal.shown THEN RETURN NULL; END IF;
        IF NEW.from_stage_id IS NOT NULL AND NEW.from_entered_at IS NOT NULL THEN
            INSERT INTO stage_stay_totals AS t
                (pipeline_id, stage_id, directions, day, shard, stays, seconds)
            VALUES (NEW.pipeline_id, NEW.from_stage_id, deal.directions,
                {DAY.format(moment="NEW.moved_at")}, {SHARD}, 1, {STAY.format(h="NEW")})
            {ADD_STAYS};
        END IF;
        SELECT id, position, kind INTO entered FROM stages WHERE id = NEW.to_stage_id;
        IF entered.kind NOT IN ('open', 'won') THEN RETURN NULL; END IF;
        SELECT * INTO prior FROM ({PRIOR}) f;
        IF prior.id IS NOT NULL THEN
            IF (prior.position, prior.id) >= (entered.position, entered.id) THEN
                RETURN NULL;
            END IF;
            INSERT INTO funnel_totals AS t (pipeline_id, stage_id, directions, day, shard, deals)
            VALUES (NEW.pipeline_id, prior.id, deal.directions,
                {DAY.format(moment="deal.created_at")}, {SHARD}, -1)
            {ADD_DEALS};
        END IF;
        INSERT INTO funnel_totals AS t (pipeline_id, stage_id, directions, day, shard, deals)
        VALUES (NEW.pipeline_id, entered.id, deal.directions,
            {DAY.format(moment="deal.created_at")}, {SHARD}, 1)
        {ADD_DEALS};
        RETURN NULL;
    END $$
    """,  # noqa: S608
    # A deal shown or hidden (deleted, restored, client deleted), or its directions changed.
    f"""
    CREATE FUNCTION deals_analytics_totals() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF {SHOWN.format(row="OLD")} THEN
            PERFORM analytics_deal_totals(
                OLD.id, OLD.pipeline_id, OLD.directions, OLD.created_at, -1);
        END IF;
        IF {SHOWN.format(row="NEW")} THEN
            PERFORM analytics_deal_totals(
                NEW.id, NEW.pipeline_id, NEW.directions, NEW.created_at, 1);
        END IF;
        RETURN NULL;
    END $$
    """,
    # Recomputed from the history: the funnel after a stage's position or kind changed.
    f"""
    CREATE FUNCTION analytics_funnel_rebuild(p_pipeline uuid) RETURNS void LANGUAGE sql AS $$
        DELETE FROM funnel_totals WHERE pipeline_id = p_pipeline;
        INSERT INTO funnel_totals (pipeline_id, stage_id, directions, day, shard, deals)
        SELECT d.pipeline_id, f.id, d.directions, {DAY.format(moment="d.created_at")}, 0,
            count(*)
        FROM deals d JOIN (
            SELECT DISTINCT ON (h.deal_id) h.deal_id, s.id
            FROM deal_stage_history h JOIN stages s ON s.id = h.to_stage_id
            WHERE h.pipeline_id = p_pipeline AND s.kind IN ('open', 'won')
            ORDER BY h.deal_id, s.position DESC, s.id DESC
        ) f ON f.deal_id = d.id
        WHERE {SHOWN.format(row="d")}
        GROUP BY 1, 2, 3, 4;
    $$
    """,  # noqa: S608
    f"""
    CREATE FUNCTION analytics_totals_rebuild(p_pipeline uuid) RETURNS void LANGUAGE sql AS $$
        DELETE FROM stage_stay_totals WHERE pipeline_id = p_pipeline;
        INSERT INTO stage_stay_totals
            (pipeline_id, stage_id, directions, day, shard, stays, seconds)
        SELECT h.pipeline_id, h.from_stage_id, d.directions,
            {DAY.format(moment="h.moved_at")}, 0, count(*), sum({STAY.format(h="h")})
        FROM deal_stage_history h JOIN deals d ON d.id = h.deal_id
        WHERE h.pipeline_id = p_pipeline AND h.from_stage_id IS NOT NULL
            AND h.from_entered_at IS NOT NULL AND {SHOWN.format(row="d")}
        GROUP BY 1, 2, 3, 4;
        SELECT analytics_funnel_rebuild(p_pipeline);
    $$
    """,  # noqa: S608
]


def _totals(name: str, *measures: sa.Column) -> None:  # type: ignore[type-arg]
    op.create_table(
        name,
        sa.Column("pipeline_id", sa.Uuid, nullable=False),
        sa.Column("stage_id", sa.Uuid, nullable=False),
        sa.Column("directions", ARRAY(sa.String(64)), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("shard", sa.SmallInteger, nullable=False),
        *measures,
        sa.PrimaryKeyConstraint("stage_id", "directions", "day", "shard"),
    )
    op.create_index(f"ix_{name}_pipeline_day", name, ["pipeline_id", "day"])


def upgrade() -> None:
    _totals(
        "stage_stay_totals",
        sa.Column("stays", sa.Integer, nullable=False),
        sa.Column("seconds", sa.Numeric, nullable=False),
    )
    _totals("funnel_totals", sa.Column("deals", sa.Integer, nullable=False))
    op.create_index(
        "ix_deal_stage_history_pipeline_moved", "deal_stage_history", ["pipeline_id", "moved_at"]
    )
    op.create_index("ix_deals_pipeline_created", "deals", ["pipeline_id", "created_at"])
    op.drop_index("ix_deal_stage_history_to_stage", "deal_stage_history")
    op.create_index(
        "ix_deal_stage_history_to_stage",
        "deal_stage_history",
        ["to_stage_id", "moved_at"],
        postgresql_include=["deal_id"],
    )
    for function in FUNCTIONS:
        op.execute(function)
    op.execute(
        "CREATE TRIGGER deal_stage_history_totals AFTER INSERT ON deal_stage_history"
        " FOR EACH ROW EXECUTE FUNCTION deal_stage_history_totals()"
    )
    op.execute(
        """
        CREATE TRIGGER deals_analytics_totals AFTER UPDATE ON deals FOR EACH ROW
        WHEN ((OLD.directions, OLD.created_at, OLD.deleted_at IS NULL, OLD.client_hidden)
              IS DISTINCT FROM
              (NEW.directions, NEW.created_at, NEW.deleted_at IS NULL, NEW.client_hidden))
        EXECUTE FUNCTION deals_analytics_totals()
        """
    )
    op.execute("SELECT analytics_totals_rebuild(id) FROM pipelines")


def downgrade() -> None:
    op.execute("DROP TRIGGER deals_analytics_totals ON deals")
    op.execute("DROP TRIGGER deal_stage_history_totals ON deal_stage_history")
    for name in (
        "analytics_totals_rebuild(uuid)",
        "analytics_funnel_rebuild(uuid)",
        "deals_analytics_totals()",
        "deal_stage_history_totals()",
        "analytics_deal_totals(uuid, uuid, varchar[], timestamptz, int)",
    ):
        op.execute(f"DROP FUNCTION {name}")
    op.drop_index("ix_deals_pipeline_created", "deals")
    op.drop_index("ix_deal_stage_history_to_stage", "deal_stage_history")
    op.create_index(
        "ix_deal_stage_history_to_stage", "deal_stage_history", ["to_stage_id", "moved_at"]
    )
    op.drop_index("ix_deal_stage_history_pipeline_moved", "deal_stage_history")
    op.drop_table("funnel_totals")
    op.drop_table("stage_stay_totals")
