"""Wake-up: settings, alarm scheduling columns, attempts and their timeline.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 17:48:59.641139
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kalliope_tel.db.base import UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "wakeup_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("message", sa.String(length=200), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("ring_timeout", sa.Integer(), nullable=False),
        sa.Column("interval", sa.Integer(), nullable=False),
        sa.Column("confirm_answer", sa.Boolean(), nullable=False),
        sa.Column("confirm_listen", sa.Boolean(), nullable=False),
        sa.Column("digit_timeout", sa.Integer(), nullable=False),
        sa.Column("max_concurrent", sa.Integer(), nullable=False),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["pbx_id"], ["pbx.id"], name=op.f("fk_wakeup_settings_pbx_id_pbx"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wakeup_settings")),
        sa.UniqueConstraint("pbx_id", name=op.f("uq_wakeup_settings_pbx_id")),
    )
    with op.batch_alter_table("wakeup_settings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wakeup_settings_pbx_id"), ["pbx_id"], unique=False)

    op.create_table(
        "wakeup_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alarm_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(length=100), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("originated_at", UTCDateTime(), nullable=True),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column(
            "outcome",
            sa.Enum(
                "confirmed",
                "no_answer",
                "busy",
                "unavailable",
                "hung_up",
                "no_digit",
                "wrong_digit",
                "lost",
                name="attempt_outcome",
                native_enum=False,
                length=20,
            ),
            nullable=True,
        ),
        sa.Column("cause", sa.String(length=80), nullable=False),
        sa.ForeignKeyConstraint(
            ["alarm_id"], ["wakeup_alarm.id"], name=op.f("fk_wakeup_attempt_alarm_id_wakeup_alarm"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wakeup_attempt")),
        sa.UniqueConstraint("alarm_id", "number", name=op.f("uq_wakeup_attempt_alarm_id")),
    )
    with op.batch_alter_table("wakeup_attempt", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wakeup_attempt_alarm_id"), ["alarm_id"], unique=False)

    op.create_table(
        "wakeup_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alarm_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("detail", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["alarm_id"], ["wakeup_alarm.id"], name=op.f("fk_wakeup_event_alarm_id_wakeup_alarm"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wakeup_event")),
    )
    with op.batch_alter_table("wakeup_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wakeup_event_alarm_id"), ["alarm_id"], unique=False)

    with op.batch_alter_table("wakeup_alarm", schema=None) as batch_op:
        batch_op.add_column(sa.Column("series", sa.String(length=36), nullable=True))
        # Alarms stored by 0002 (at check-in) exist already: give them defaults.
        batch_op.add_column(sa.Column("attempts_made", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("next_attempt_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("lease_until", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("finished_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("acknowledged_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("acknowledged_by", sa.String(length=100), nullable=True))
        batch_op.create_index(batch_op.f("ix_wakeup_alarm_next_attempt_at"), ["next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_wakeup_alarm_series"), ["series"], unique=False)
    op.execute("UPDATE wakeup_alarm SET next_attempt_at = due_at WHERE state = 'scheduled'")


def downgrade() -> None:
    with op.batch_alter_table("wakeup_alarm", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wakeup_alarm_series"))
        batch_op.drop_index(batch_op.f("ix_wakeup_alarm_next_attempt_at"))
        batch_op.drop_column("acknowledged_by")
        batch_op.drop_column("acknowledged_at")
        batch_op.drop_column("finished_at")
        batch_op.drop_column("lease_until")
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("attempts_made")
        batch_op.drop_column("series")

    with op.batch_alter_table("wakeup_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wakeup_event_alarm_id"))

    op.drop_table("wakeup_event")
    with op.batch_alter_table("wakeup_attempt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wakeup_attempt_alarm_id"))

    op.drop_table("wakeup_attempt")
    with op.batch_alter_table("wakeup_settings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wakeup_settings_pbx_id"))

    op.drop_table("wakeup_settings")
