"""Login attempts counted per address, account and pair, atomically across
nodes (web_login_throttle).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 12:40:00
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
        "web_login_throttle",
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("window_start", UTCDateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_web_login_throttle")),
    )
    with op.batch_alter_table("web_login_throttle", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_web_login_throttle_window_start"), ["window_start"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("web_login_throttle", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_login_throttle_window_start"))
    op.drop_table("web_login_throttle")
