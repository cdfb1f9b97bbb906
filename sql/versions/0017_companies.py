"""Companies: the installation's partner and its customers (Omnia's Admin
Console). Every PBX belongs to one: those there are go to the installation's
partner, made here.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 19:59:14.525627
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kalliope_tel.db.base import UTCDateTime

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    company = op.create_table(
        "company",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "kind", sa.Enum("partner", "customer", name="company_kind", native_enum=False, length=20), nullable=False
        ),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("legal_name", sa.String(length=200), nullable=False),
        sa.Column("customer_code", sa.String(length=40), nullable=True),
        sa.Column("vat_number", sa.String(length=13), nullable=False),
        sa.Column("fiscal_code", sa.String(length=16), nullable=False),
        sa.Column(
            "status",
            sa.Enum("active", "suspended", name="company_status", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("manager_enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "(kind = 'partner' AND parent_id IS NULL) OR (kind = 'customer' AND parent_id IS NOT NULL)",
            name=op.f("ck_company_partner_has_no_parent"),
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["company.id"], name=op.f("fk_company_parent_id_company"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_company")),
        sa.UniqueConstraint("parent_id", "customer_code", name=op.f("uq_company_parent_id")),
    )
    with op.batch_alter_table("company", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_company_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_company_parent_id"), ["parent_id"], unique=False)

    op.execute(
        company.insert().values(
            kind="partner",
            legal_name="Installation",
            vat_number="",
            fiscal_code="",
            status="active",
            manager_enabled=True,
            created_at=sa.func.current_timestamp(),
        )
    )
    with op.batch_alter_table("pbx", schema=None) as batch_op:
        batch_op.add_column(sa.Column("company_id", sa.Integer(), nullable=True))
    op.execute("UPDATE pbx SET company_id = (SELECT min(id) FROM company)")
    with op.batch_alter_table("pbx", schema=None) as batch_op:
        batch_op.alter_column("company_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_index(batch_op.f("ix_pbx_company_id"), ["company_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_pbx_company_id_company"), "company", ["company_id"], ["id"], ondelete="CASCADE"
        )


def downgrade() -> None:
    with op.batch_alter_table("pbx", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_pbx_company_id_company"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_pbx_company_id"))
        batch_op.drop_column("company_id")

    with op.batch_alter_table("company", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_company_parent_id"))
        batch_op.drop_index(batch_op.f("ix_company_created_at"))

    op.drop_table("company")
