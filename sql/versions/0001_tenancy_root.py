"""Tenancy root: the pbx table and the default PBX of a single-site install.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kalliope_tel.db.base import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pbx = op.create_table(
        "pbx",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pbx")),
        sa.UniqueConstraint("slug", name=op.f("uq_pbx_slug")),
    )
    op.execute(
        pbx.insert().values(
            slug="default",
            name="Default PBX",
            is_default=True,
            timezone="UTC",
            created_at=sa.func.current_timestamp(),
        )
    )


def downgrade() -> None:
    op.drop_table("pbx")
