"""Counted attempts (web logins, Mail2Fax PINs) shared by every node; the
PGP signatures Mail2Fax accepted (each once); the receiving mail server a
box trusts (its authserv-id; existing boxes trust none until set); the CDR
file cursor's first-line fingerprint.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 12:37:48.493193
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kalliope_tel.db.base import UTCDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "attempt_counter",
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("window_start", UTCDateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_attempt_counter")),
    )
    with op.batch_alter_table("attempt_counter", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_attempt_counter_window_start"), ["window_start"], unique=False)

    op.create_table(
        "mail2fax_signature",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("signed_at", UTCDateTime(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("used_at", UTCDateTime(), nullable=False),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pbx_id"], ["pbx.id"], name=op.f("fk_mail2fax_signature_pbx_id_pbx"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail2fax_signature")),
        sa.UniqueConstraint("pbx_id", "digest", name=op.f("uq_mail2fax_signature_pbx_id")),
        sa.UniqueConstraint("pbx_id", "id", name="uq_mail2fax_signature_pbx_row"),
    )
    with op.batch_alter_table("mail2fax_signature", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mail2fax_signature_pbx_id"), ["pbx_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_mail2fax_signature_signed_at"), ["signed_at"], unique=False)

    with op.batch_alter_table("mail2fax_box", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trusted_authserv_id", sa.String(length=253), nullable=False, server_default=""))

    with op.batch_alter_table("billing_cdr_cursor", schema=None) as batch_op:
        batch_op.add_column(sa.Column("head", sa.String(length=64), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("billing_cdr_cursor", schema=None) as batch_op:
        batch_op.drop_column("head")

    with op.batch_alter_table("mail2fax_box", schema=None) as batch_op:
        batch_op.drop_column("trusted_authserv_id")

    with op.batch_alter_table("mail2fax_signature", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mail2fax_signature_signed_at"))
        batch_op.drop_index(batch_op.f("ix_mail2fax_signature_pbx_id"))

    op.drop_table("mail2fax_signature")
    with op.batch_alter_table("attempt_counter", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attempt_counter_window_start"))

    op.drop_table("attempt_counter")
