"""Organizations complete (identifiers, addresses, contacts, classification, soft delete) and the
append-only audit trail.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0002"
down_revision = "0001"

_EMPTY_ARRAY = sa.text("'{}'")


def upgrade() -> None:
    add = op.add_column
    add("organizations", sa.Column("country", sa.String(2), nullable=False, server_default="RU"))
    add("organizations", sa.Column("kpp", sa.String(9)))
    add("organizations", sa.Column("foreign_tax_id", sa.String(200)))
    add("organizations", sa.Column("legal_address", JSONB))
    add("organizations", sa.Column("actual_address", JSONB))
    add("organizations", sa.Column("postal_address", JSONB))
    add("organizations", sa.Column("phones", JSONB, nullable=False, server_default="[]"))
    for name, length in (
        ("emails", 320),
        ("email_domains", 255),
        ("sites", 2048),
        ("categories", 100),
        ("tags", 100),
    ):
        add(
            "organizations",
            sa.Column(name, ARRAY(sa.String(length)), nullable=False, server_default=_EMPTY_ARRAY),
        )
    add("organizations", sa.Column("industry", sa.String(200)))
    add("organizations", sa.Column("responsible_employee_id", sa.Uuid))
    add("organizations", sa.Column("updated_by", sa.String(200)))
    add("organizations", sa.Column("deleted_by", sa.String(200)))
    add("organizations", sa.Column("deleted_at", sa.DateTime(timezone=True)))
    for name in ("email_domains", "tags", "categories"):
        op.create_index(f"ix_organizations_{name}", "organizations", [name], postgresql_using="gin")
    op.create_index("ix_organizations_ogrn", "organizations", ["ogrn"])
    op.create_index("ix_organizations_responsible", "organizations", ["responsible_employee_id"])
    op.create_index("ix_organizations_legal_name", "organizations", ["legal_name", "id"])

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("entity_kind", sa.String(40), nullable=False),
        sa.Column("entity_id", sa.Uuid, nullable=False),
        sa.Column("version", sa.Integer),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("actor_subject", sa.String(200), nullable=False),
        sa.Column("actor_kind", sa.String(20), nullable=False),
        sa.Column("actor_name", sa.String(500)),
        sa.Column("correlation_id", sa.String(128), nullable=False),
        sa.Column("changes", JSONB, nullable=False, server_default="{}"),
        sa.Column("note", sa.Text),
        sa.Column(
            "occurred_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index("ix_audit_log_entity", "audit_log", ["entity_kind", "entity_id", "id"])
    op.execute(
        """
        CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_log is append-only';
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
    )


def downgrade() -> None:
    op.drop_table("audit_log")
    op.execute("DROP FUNCTION audit_log_append_only()")
    for name in ("email_domains", "tags", "categories", "ogrn", "responsible", "legal_name"):
        op.drop_index(f"ix_organizations_{name}", "organizations")
    for name in (
        "country",
        "kpp",
        "foreign_tax_id",
        "legal_address",
        "actual_address",
        "postal_address",
        "phones",
        "emails",
        "email_domains",
        "sites",
        "categories",
        "tags",
        "industry",
        "responsible_employee_id",
        "updated_by",
        "deleted_by",
        "deleted_at",
    ):
        op.drop_column("organizations", name)
