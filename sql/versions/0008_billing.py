"""Billing: cost profiles and rules per outgoing line, call records keyed by
Asterisk's CDR identity and priced when recorded, and the CDR file cursor.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 09:30:15.494700
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kalliope_tel.db.base import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "billing_cdr_cursor",
        sa.Column("server", sa.String(length=30), nullable=False),
        sa.Column("file_id", sa.String(length=120), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("server", name=op.f("pk_billing_cdr_cursor")),
    )
    op.create_table(
        "billing_profile",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("line", sa.String(length=80), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["pbx_id"], ["pbx.id"], name=op.f("fk_billing_profile_pbx_id_pbx"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_profile")),
        sa.UniqueConstraint("pbx_id", "id", name="uq_billing_profile_pbx_row"),
        sa.UniqueConstraint("pbx_id", "line", name="uq_billing_profile_line"),
        sa.UniqueConstraint("pbx_id", "name", name="uq_billing_profile_name"),
    )
    with op.batch_alter_table("billing_profile", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_profile_pbx_id"), ["pbx_id"], unique=False)

    op.create_table(
        "billing_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column(
            "match",
            sa.Enum("exact", "prefix", "other", name="billing_match", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("digits", sa.String(length=32), nullable=False),
        sa.Column("connection_fee", sa.BigInteger(), nullable=False),
        sa.Column("per_minute", sa.BigInteger(), nullable=False),
        sa.Column("first_increment", sa.Integer(), nullable=False),
        sa.Column("next_increment", sa.Integer(), nullable=False),
        sa.Column("minimum", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pbx_id", "profile_id"],
            ["billing_profile.pbx_id", "billing_profile.id"],
            name="fk_billing_rule_profile_id_same_pbx",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["pbx_id"], ["pbx.id"], name=op.f("fk_billing_rule_pbx_id_pbx"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_rule")),
        sa.UniqueConstraint("profile_id", "match", "digits", name=op.f("uq_billing_rule_profile_id")),
    )
    with op.batch_alter_table("billing_rule", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_rule_pbx_id"), ["pbx_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_billing_rule_profile_id"), ["profile_id"], unique=False)

    op.create_table(
        "billing_call",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("server", sa.String(length=30), nullable=False),
        sa.Column("uniqueid", sa.String(length=64), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("linkedid", sa.String(length=64), nullable=False),
        sa.Column("extension", sa.String(length=20), nullable=False),
        sa.Column("dialled", sa.String(length=40), nullable=False),
        sa.Column("line", sa.String(length=80), nullable=False),
        sa.Column(
            "direction",
            sa.Enum("outbound", "internal", "refused", name="billing_direction", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("start_at", UTCDateTime(), nullable=False),
        sa.Column("answer_at", UTCDateTime(), nullable=True),
        sa.Column("end_at", UTCDateTime(), nullable=False),
        sa.Column("duration", sa.Integer(), nullable=False),
        sa.Column("billsec", sa.Integer(), nullable=False),
        sa.Column("disposition", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=200), nullable=False),
        sa.Column("dst_channel", sa.String(length=200), nullable=False),
        sa.Column("room_id", sa.Integer(), nullable=True),
        sa.Column("stay_id", sa.Integer(), nullable=True),
        sa.Column("cost", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("billed_seconds", sa.Integer(), nullable=True),
        sa.Column("profile_name", sa.String(length=80), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=True),
        sa.Column("rule_key", sa.String(length=60), nullable=False),
        sa.Column("unpriced", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["pbx_id"], ["pbx.id"], name=op.f("fk_billing_call_pbx_id_pbx"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["room_id"], ["hotel_room.id"], name=op.f("fk_billing_call_room_id_hotel_room"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["billing_rule.id"], name=op.f("fk_billing_call_rule_id_billing_rule"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["stay_id"], ["hotel_stay.id"], name=op.f("fk_billing_call_stay_id_hotel_stay"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_call")),
        sa.UniqueConstraint("server", "uniqueid", "sequence", name="uq_billing_call_cdr"),
    )
    with op.batch_alter_table("billing_call", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_call_pbx_id"), ["pbx_id"], unique=False)
        batch_op.create_index("ix_billing_call_pbx_start", ["pbx_id", "start_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_billing_call_stay_id"), ["stay_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("billing_call", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_call_stay_id"))
        batch_op.drop_index("ix_billing_call_pbx_start")
        batch_op.drop_index(batch_op.f("ix_billing_call_pbx_id"))

    op.drop_table("billing_call")
    with op.batch_alter_table("billing_rule", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_rule_profile_id"))
        batch_op.drop_index(batch_op.f("ix_billing_rule_pbx_id"))

    op.drop_table("billing_rule")
    with op.batch_alter_table("billing_profile", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_profile_pbx_id"))

    op.drop_table("billing_profile")
    op.drop_table("billing_cdr_cursor")
