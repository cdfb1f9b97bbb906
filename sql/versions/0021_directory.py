"""The directory: how each extension is published (none, number and name,
or with its user's details) and whether it is in the phones' XML phonebook;
whether a hotel publishes its guests' names for occupied rooms (off).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 09:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("extension", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "directory_mode",
                sa.Enum("none", "basic", "full", name="directory_mode", native_enum=False, length=20),
                nullable=False,
                server_default="basic",
            )
        )
        batch_op.add_column(sa.Column("show_in_phonebook", sa.Boolean(), nullable=False, server_default=sa.true()))
    with op.batch_alter_table("hotel_settings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("directory_guest_names", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("hotel_settings", schema=None) as batch_op:
        batch_op.drop_column("directory_guest_names")
    with op.batch_alter_table("extension", schema=None) as batch_op:
        batch_op.drop_column("show_in_phonebook")
        batch_op.drop_column("directory_mode")
