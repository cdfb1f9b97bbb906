"""A room checked out becomes dirty (hotel setting ``checkout_dirty``, on
for existing hotels too: a room a guest left needs cleaning); each PBX's
``config_serial``, which serve compares to apply configuration changes.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 16:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("hotel_settings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("checkout_dirty", sa.Boolean(), nullable=False, server_default=sa.true()))
    with op.batch_alter_table("pbx", schema=None) as batch_op:
        batch_op.add_column(sa.Column("config_serial", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("pbx", schema=None) as batch_op:
        batch_op.drop_column("config_serial")
    with op.batch_alter_table("hotel_settings", schema=None) as batch_op:
        batch_op.drop_column("checkout_dirty")
