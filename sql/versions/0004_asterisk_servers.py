"""PBXs at the Asterisk edge: Asterisk servers a PBX is bound to; serve nodes' health.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kalliope_tel.db.base import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "asterisk_server",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=30), nullable=False),
        sa.Column("lab_name", sa.String(length=64), nullable=False),
        sa.Column("ari_url", sa.String(length=200), nullable=False),
        sa.Column("ari_username", sa.String(length=64), nullable=False),
        sa.Column("ari_password", sa.String(length=200), nullable=False),
        sa.Column("ami_url", sa.String(length=200), nullable=False),
        sa.Column("ami_username", sa.String(length=64), nullable=False),
        sa.Column("ami_password", sa.String(length=200), nullable=False),
        sa.Column("config_dir", sa.String(length=300), nullable=False),
        sa.Column("device_template", sa.String(length=100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_asterisk_server")),
        sa.UniqueConstraint("name", name=op.f("uq_asterisk_server_name")),
    )
    with op.batch_alter_table("pbx") as batch:
        batch.add_column(sa.Column("asterisk_server_id", sa.Integer(), nullable=True))
        batch.create_index(batch.f("ix_pbx_asterisk_server_id"), ["asterisk_server_id"], unique=False)
        batch.create_foreign_key(
            batch.f("fk_pbx_asterisk_server_id_asterisk_server"),
            "asterisk_server",
            ["asterisk_server_id"],
            ["id"],
            ondelete="RESTRICT",
        )
    op.create_table(
        "serve_node",
        sa.Column("node", sa.String(length=100), nullable=False),
        sa.Column("host", sa.String(length=100), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
        sa.Column("stopped_at", UTCDateTime(), nullable=True),
        sa.Column("status", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("node", name=op.f("pk_serve_node")),
    )


def downgrade() -> None:
    op.drop_table("serve_node")
    with op.batch_alter_table("pbx") as batch:
        batch.drop_constraint(batch.f("fk_pbx_asterisk_server_id_asterisk_server"), type_="foreignkey")
        batch.drop_index(batch.f("ix_pbx_asterisk_server_id"))
        batch.drop_column("asterisk_server_id")
    op.drop_table("asterisk_server")
