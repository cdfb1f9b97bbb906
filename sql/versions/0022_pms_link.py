"""The hotel PMS link (FIAS): a PBX's link settings and lease, the outbox of
what is owed to the PMS (postings, wake-up answers, room status), and the
wake-up alarms the PMS set.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 11:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kalliope_tel.db.base import UTCDateTime

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _pbx() -> sa.Column[int]:
    return sa.Column("pbx_id", sa.Integer(), sa.ForeignKey("pbx.id", ondelete="CASCADE"), nullable=False, index=True)


def upgrade() -> None:
    op.create_table(
        "pms_link",
        sa.Column("id", sa.Integer(), primary_key=True),
        _pbx(),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column(
            "mode", sa.Enum("connect", "listen", name="pms_link_mode", native_enum=False, length=20), nullable=False
        ),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("postings", sa.Boolean(), nullable=False),
        sa.Column("room_status", sa.Boolean(), nullable=False),
        sa.Column("class_map", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("last_record", sa.String(200), nullable=False),
        sa.Column("last_record_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(300), nullable=False),
        sa.Column("linked_at", UTCDateTime(), nullable=True),
        sa.Column("resynced_at", UTCDateTime(), nullable=True),
        sa.Column("resync_wanted", sa.Boolean(), nullable=False),
        sa.Column("refused_records", sa.Integer(), nullable=False),
        sa.Column("cleaning_seen", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(100), nullable=True),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("pbx_id", name="uq_pms_link_pbx"),
    )
    op.create_table(
        "pms_message",
        sa.Column("id", sa.Integer(), primary_key=True),
        _pbx(),
        sa.Column(
            "kind", sa.Enum("PS", "WA", "RE", name="pms_message_kind", native_enum=False, length=20), nullable=False
        ),
        sa.Column("source", sa.String(60), nullable=False),
        sa.Column("room", sa.String(20), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column(
            "state",
            sa.Enum("owed", "sent", "done", "refused", name="pms_message_state", native_enum=False, length=20),
            nullable=False,
            index=True,
        ),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("answer", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("sent_by", sa.String(100), nullable=False),
        sa.Column("done_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("source", name="uq_pms_message_source"),
    )
    op.create_table(
        "pms_alarm",
        sa.Column("alarm_id", sa.Integer(), primary_key=True, autoincrement=False),
        _pbx(),
        sa.Column("room", sa.String(20), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("answered", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pms_alarm")
    op.drop_table("pms_message")
    op.drop_table("pms_link")
