"""How far each PBX's configuration has reached its Asterisk (the serial
last written and reloaded, when, the last error), for the administration
pages.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 19:57:32.422307
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kalliope_tel.db.base import UTCDateTime

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pbx_config_state",
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.Column("applied_serial", sa.Integer(), nullable=False),
        sa.Column("applied_at", UTCDateTime(), nullable=True),
        sa.Column("error", sa.String(length=300), nullable=False),
        sa.Column("error_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["pbx_id"], ["pbx.id"], name=op.f("fk_pbx_config_state_pbx_id_pbx"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("pbx_id", name=op.f("pk_pbx_config_state")),
    )


def downgrade() -> None:
    op.drop_table("pbx_config_state")
