"""Carrier trunks, numbers and groups of PBXs (Omnia Manager): the
installation's carriers, a company's SIP trunks, a PBX's numbers and blocks
(unique across the installation), the PBX's default destination for a
number no extension answers, and shared and numbering groups of PBXs with
the shared groups' ring groups.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 08:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kalliope_tel.db.base import UTCDateTime

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pbx_group",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column(
            "kind", sa.Enum("shared", "numbering", name="pbx_group_kind", native_enum=False, length=20), nullable=False
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["company.id"], name=op.f("fk_pbx_group_partner_id_company"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pbx_group")),
        sa.UniqueConstraint("partner_id", "name", name=op.f("uq_pbx_group_partner_id")),
    )
    with op.batch_alter_table("pbx_group", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pbx_group_partner_id"), ["partner_id"], unique=False)
    with op.batch_alter_table("pbx", schema=None) as batch_op:
        batch_op.add_column(sa.Column("group_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("default_destination", sa.String(length=20), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("suspended_announcement", sa.String(length=100), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("suspended_cause", sa.Integer(), nullable=False, server_default="21"))
        batch_op.create_index(batch_op.f("ix_pbx_group_id"), ["group_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_pbx_group_id_pbx_group"), "pbx_group", ["group_id"], ["id"], ondelete="SET NULL"
        )
    op.create_table(
        "ring_group",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.Column("ring_seconds", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["pbx_group.id"], name=op.f("fk_ring_group_group_id_pbx_group"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ring_group")),
        sa.UniqueConstraint("group_id", "number", name=op.f("uq_ring_group_group_id")),
    )
    with op.batch_alter_table("ring_group", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ring_group_group_id"), ["group_id"], unique=False)
    op.create_table(
        "carrier",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("endpoints", sa.JSON(), nullable=False),
        sa.Column(
            "transport",
            sa.Enum("udp", "tcp", "tls", name="sip_transport", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("codecs", sa.String(length=60), nullable=False),
        sa.Column("registers", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_carrier")),
        sa.UniqueConstraint("name", name=op.f("uq_carrier_name")),
    )
    op.create_table(
        "sip_trunk",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("carrier_id", sa.Integer(), nullable=False),
        sa.Column("endpoint", sa.String(length=100), nullable=False),
        sa.Column("auth_required", sa.Boolean(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password", sa.String(length=128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["company.id"], name=op.f("fk_sip_trunk_company_id_company"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["carrier_id"], ["carrier.id"], name=op.f("fk_sip_trunk_carrier_id_carrier"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sip_trunk")),
    )
    with op.batch_alter_table("sip_trunk", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sip_trunk_company_id"), ["company_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_sip_trunk_carrier_id"), ["carrier_id"], unique=False)
    op.create_table(
        "phone_number",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.Column("trunk_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("digits", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["pbx_id"], ["pbx.id"], name=op.f("fk_phone_number_pbx_id_pbx"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["trunk_id"], ["sip_trunk.id"], name=op.f("fk_phone_number_trunk_id_sip_trunk"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phone_number")),
        sa.UniqueConstraint("number", name=op.f("uq_phone_number_number")),
    )
    with op.batch_alter_table("phone_number", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_phone_number_pbx_id"), ["pbx_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_phone_number_trunk_id"), ["trunk_id"], unique=False)


def downgrade() -> None:
    op.drop_table("phone_number")
    op.drop_table("sip_trunk")
    op.drop_table("carrier")
    op.drop_table("ring_group")
    with op.batch_alter_table("pbx", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_pbx_group_id_pbx_group"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_pbx_group_id"))
        batch_op.drop_column("suspended_cause")
        batch_op.drop_column("suspended_announcement")
        batch_op.drop_column("default_destination")
        batch_op.drop_column("group_id")
    op.drop_table("pbx_group")
