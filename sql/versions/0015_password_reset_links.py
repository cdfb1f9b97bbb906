"""Password reset links mailed to users: the token's hash to check it, the
mail owed (claimed by one node, retried with the one backoff), its expiry.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 19:35:25.545084
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kalliope_tel.db.base import UTCDateTime

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "app_password_reset",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("link_base", sa.String(length=300), nullable=False),
        sa.Column("lang", sa.String(length=5), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "pending",
                "sent",
                "failed",
                "used",
                "replaced",
                name="password_reset_state",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("next_at", UTCDateTime(), nullable=False),
        sa.Column("error", sa.String(length=300), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["pbx_id"], ["pbx.id"], name=op.f("fk_app_password_reset_pbx_id_pbx"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_app_password_reset_user_id_app_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_password_reset")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_app_password_reset_token_hash")),
    )
    with op.batch_alter_table("app_password_reset", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_app_password_reset_next_at"), ["next_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_app_password_reset_pbx_id"), ["pbx_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_app_password_reset_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("app_password_reset", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_app_password_reset_user_id"))
        batch_op.drop_index(batch_op.f("ix_app_password_reset_pbx_id"))
        batch_op.drop_index(batch_op.f("ix_app_password_reset_next_at"))

    op.drop_table("app_password_reset")
