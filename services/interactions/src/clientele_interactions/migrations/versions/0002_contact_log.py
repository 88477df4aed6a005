"""The contact log: interactions, results, audit, attachments, hand-overs; summary read models.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0002"
down_revision = "0001"

DEFAULT_RESULTS = [
    # kind, code, label, position, follow_up_days
    ("call", "reached", "Reached", 10, None),
    ("call", "no_answer", "No answer", 20, 1),
    ("call", "call_back", "Asked to call back", 30, 2),
    ("call", "not_interested", "Not interested", 40, None),
    ("email", "sent", "Sent", 10, 3),
    ("email", "replied", "Replied", 20, None),
    ("meeting", "held", "Held", 10, 7),
    ("meeting", "postponed", "Postponed", 20, 1),
    ("meeting", "cancelled_by_client", "Cancelled by the client", 30, 3),
    ("message", "sent", "Sent", 10, 2),
    ("message", "replied", "Replied", 20, None),
    ("other", "done", "Done", 10, None),
]


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.create_index(
        "ix_client_cards_directions", "client_cards", ["directions"], postgresql_using="gin"
    )
    results = op.create_table(
        "interaction_results",
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("follow_up_days", sa.Integer),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("version", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    )
    op.bulk_insert(
        results,
        [
            {"kind": k, "code": c, "label": label, "position": p, "follow_up_days": f}
            for k, c, label, p, f in DEFAULT_RESULTS
        ],
    )
    op.create_table(
        "interactions",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("organization_id", sa.Uuid, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True)),
        sa.Column("due_at", sa.DateTime(timezone=True)),
        sa.Column("duration_seconds", sa.Integer),
        sa.Column("person_ids", ARRAY(sa.Uuid), nullable=False, server_default=sa.text("'{}'")),
        sa.Column("responsible_employee_id", sa.Uuid),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("notes", sa.Text),
        sa.Column("result", sa.String(64)),
        sa.Column("deal_id", sa.Uuid),
        sa.Column("campaign_id", sa.Uuid),
        sa.Column("follows_id", sa.Uuid),
        sa.Column("source", sa.String(20), nullable=False, server_default=sa.text("'api'")),
        sa.Column("message_id", sa.String(998)),
        sa.Column("overdue_at", sa.DateTime(timezone=True)),
        sa.Column("cancel_reason", sa.String(500)),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.CheckConstraint(
            "kind IN ('call', 'email', 'meeting', 'message', 'other')", name="ck_interactions_kind"
        ),
        sa.CheckConstraint("direction IN ('in', 'out')", name="ck_interactions_direction"),
        sa.CheckConstraint(
            "status IN ('planned', 'done', 'cancelled')", name="ck_interactions_status"
        ),
        sa.CheckConstraint(
            "status <> 'planned' OR (due_at IS NOT NULL AND responsible_employee_id IS NOT NULL)",
            name="ck_interactions_planned",
        ),
        sa.CheckConstraint(
            "status <> 'done' OR occurred_at IS NOT NULL", name="ck_interactions_done"
        ),
    )
    op.create_index(
        "ix_interactions_org_occurred", "interactions", ["organization_id", "occurred_at"]
    )
    op.create_index(
        "ix_interactions_org_due",
        "interactions",
        ["organization_id", "due_at"],
        postgresql_where=sa.text("status = 'planned'"),
    )
    op.create_index(
        "ix_interactions_overdue_scan",
        "interactions",
        ["due_at"],
        postgresql_where=sa.text("status = 'planned' AND overdue_at IS NULL"),
    )
    op.create_index(
        "ix_interactions_responsible", "interactions", ["responsible_employee_id", "status"]
    )
    op.create_index(
        "ux_interactions_message",
        "interactions",
        ["organization_id", "message_id"],
        unique=True,
        postgresql_where=sa.text("message_id IS NOT NULL"),
    )
    op.create_table(
        "interaction_audit",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("interaction_id", sa.Uuid, nullable=False),
        sa.Column("version", sa.Integer),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("actor_subject", sa.String(200), nullable=False),
        sa.Column("actor_kind", sa.String(20), nullable=False),
        sa.Column("correlation_id", sa.String(128), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("changes", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("note", sa.String(500)),
    )
    op.create_index("ix_interaction_audit_entity", "interaction_audit", ["interaction_id", "id"])
    op.create_table(
        "attachments",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("interaction_id", sa.Uuid, sa.ForeignKey("interactions.id"), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(200), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("storage_key", sa.String(500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_index("ix_attachments_interaction", "attachments", ["interaction_id"])
    op.create_table(
        "handovers",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("from_employee_id", sa.Uuid, nullable=False),
        sa.Column("to_employee_id", sa.Uuid, nullable=False),
        sa.Column("organization_id", sa.Uuid),
        sa.Column("reason", sa.String(500)),
        sa.Column("interactions_moved", sa.Integer, nullable=False),
        sa.Column("organizations", ARRAY(sa.Uuid), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "summary_generations",
        sa.Column("organization_id", sa.Uuid, primary_key=True),
        sa.Column("generation", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "persons",
        sa.Column("person_id", sa.Uuid, primary_key=True),
        sa.Column("full_name", sa.String(500), nullable=False),
        sa.Column("emails", ARRAY(sa.String(320)), nullable=False, server_default=sa.text("'{}'")),
        sa.Column("phones", ARRAY(sa.String(64)), nullable=False, server_default=sa.text("'{}'")),
        sa.Column(
            "directions", ARRAY(sa.String(64)), nullable=False, server_default=sa.text("'{}'")
        ),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    )
    op.create_index("ix_persons_emails", "persons", ["emails"], postgresql_using="gin")
    op.create_table(
        "employments",
        sa.Column("employment_id", sa.Uuid, primary_key=True),
        sa.Column("person_id", sa.Uuid, nullable=False),
        sa.Column("organization_id", sa.Uuid, nullable=False),
        sa.Column("position", sa.String(300)),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_employments_org", "employments", ["organization_id"])
    op.create_index("ix_employments_person", "employments", ["person_id"])
    op.create_table(
        "employees",
        sa.Column("employee_id", sa.Uuid, primary_key=True),
        sa.Column("full_name", sa.String(500), nullable=False),
        sa.Column("email", sa.String(320)),
        sa.Column("subject", sa.String(200)),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "client_deals",
        sa.Column("deal_id", sa.Uuid, primary_key=True),
        sa.Column("organization_id", sa.Uuid, nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("stage", sa.String(200)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("amount", sa.Numeric(18, 2)),
        sa.Column("currency", sa.String(3)),
        sa.Column(
            "directions", ARRAY(sa.String(64)), nullable=False, server_default=sa.text("'{}'")
        ),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_client_deals_org", "client_deals", ["organization_id"])
    op.create_table(
        "client_campaigns",
        sa.Column("campaign_id", sa.Uuid, primary_key=True),
        sa.Column("organization_id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column(
            "directions", ARRAY(sa.String(64)), nullable=False, server_default=sa.text("'{}'")
        ),
        sa.Column("occurred_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "client_erp_documents",
        sa.Column("document_id", sa.String(200), primary_key=True),
        sa.Column("organization_id", sa.Uuid, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("number", sa.String(100)),
        sa.Column("issued_on", sa.DateTime(timezone=True)),
        sa.Column("amount", sa.Numeric(18, 2)),
        sa.Column("currency", sa.String(3)),
        sa.Column("status", sa.String(40)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("organization_id", "kind", "document_id", name="uq_client_erp_doc"),
    )
    op.create_index(
        "ix_client_erp_documents_org", "client_erp_documents", ["organization_id", "issued_on"]
    )


def downgrade() -> None:
    for table in (
        "client_erp_documents",
        "client_campaigns",
        "client_deals",
        "employees",
        "employments",
        "persons",
        "summary_generations",
        "handovers",
        "attachments",
        "interaction_audit",
        "interactions",
        "interaction_results",
    ):
        op.drop_table(table)
    op.drop_index("ix_client_cards_directions", table_name="client_cards")
