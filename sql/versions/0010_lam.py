"""LAM: per-PBX settings (licences, dial-in number), meeting rooms and
their owners, meetings with attendees, and the invitation mails owed.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 13:21:17.569348
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kalliope_tel.db.base import UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lam_room",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["pbx_id"], ["pbx.id"], name=op.f("fk_lam_room_pbx_id_pbx"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lam_room")),
        sa.UniqueConstraint("pbx_id", "id", name="uq_lam_room_pbx_row"),
        sa.UniqueConstraint("pbx_id", "name", name=op.f("uq_lam_room_pbx_id")),
    )
    with op.batch_alter_table("lam_room", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lam_room_pbx_id"), ["pbx_id"], unique=False)

    op.create_table(
        "lam_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("licences", sa.Integer(), nullable=False),
        sa.Column("dial_in_number", sa.String(length=20), nullable=False),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["pbx_id"], ["pbx.id"], name=op.f("fk_lam_settings_pbx_id_pbx"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lam_settings")),
        sa.UniqueConstraint("pbx_id", name=op.f("uq_lam_settings_pbx_id")),
    )
    with op.batch_alter_table("lam_settings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lam_settings_pbx_id"), ["pbx_id"], unique=False)

    op.create_table(
        "lam_meeting",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("password", sa.String(length=64), nullable=False),
        sa.Column("waiting_room", sa.Boolean(), nullable=False),
        sa.Column("instance_id", sa.String(length=42), nullable=False),
        sa.Column("guest_pin", sa.String(length=12), nullable=False),
        sa.Column("moderator_pin", sa.String(length=12), nullable=False),
        sa.Column("uid", sa.String(length=120), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum("scheduled", "cancelled", name="lam_meeting_state", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("organizer_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organizer_id"], ["app_user.id"], name=op.f("fk_lam_meeting_organizer_id_app_user"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["pbx_id", "room_id"],
            ["lam_room.pbx_id", "lam_room.id"],
            name="fk_lam_meeting_room_id_same_pbx",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["pbx_id"], ["pbx.id"], name=op.f("fk_lam_meeting_pbx_id_pbx"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lam_meeting")),
        sa.UniqueConstraint("instance_id", name=op.f("uq_lam_meeting_instance_id")),
        sa.UniqueConstraint("pbx_id", "id", name="uq_lam_meeting_pbx_row"),
        sa.UniqueConstraint("uid", name=op.f("uq_lam_meeting_uid")),
    )
    with op.batch_alter_table("lam_meeting", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lam_meeting_ends_at"), ["ends_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_lam_meeting_pbx_id"), ["pbx_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_lam_meeting_room_id"), ["room_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_lam_meeting_starts_at"), ["starts_at"], unique=False)

    op.create_table(
        "lam_room_owner",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["room_id"], ["lam_room.id"], name=op.f("fk_lam_room_owner_room_id_lam_room"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_lam_room_owner_user_id_app_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lam_room_owner")),
        sa.UniqueConstraint("room_id", "user_id", name=op.f("uq_lam_room_owner_room_id")),
    )
    with op.batch_alter_table("lam_room_owner", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lam_room_owner_room_id"), ["room_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_lam_room_owner_user_id"), ["user_id"], unique=False)

    op.create_table(
        "lam_attendee",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("moderator", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["lam_meeting.id"], name=op.f("fk_lam_attendee_meeting_id_lam_meeting"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_lam_attendee_user_id_app_user"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lam_attendee")),
        sa.UniqueConstraint("meeting_id", "email", name=op.f("uq_lam_attendee_meeting_id")),
    )
    with op.batch_alter_table("lam_attendee", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lam_attendee_meeting_id"), ["meeting_id"], unique=False)

    op.create_table(
        "lam_invitation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("request", "cancel", name="lam_invitation_kind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("ics", sa.Text(), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "pending", "sent", "failed", "superseded", name="lam_invitation_state", native_enum=False, length=20
            ),
            nullable=False,
        ),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("next_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("error", sa.String(length=300), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["lam_meeting.id"],
            name=op.f("fk_lam_invitation_meeting_id_lam_meeting"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["pbx_id"], ["pbx.id"], name=op.f("fk_lam_invitation_pbx_id_pbx"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lam_invitation")),
    )
    with op.batch_alter_table("lam_invitation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lam_invitation_meeting_id"), ["meeting_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_lam_invitation_next_at"), ["next_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_lam_invitation_pbx_id"), ["pbx_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_lam_invitation_state"), ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("lam_invitation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lam_invitation_state"))
        batch_op.drop_index(batch_op.f("ix_lam_invitation_pbx_id"))
        batch_op.drop_index(batch_op.f("ix_lam_invitation_next_at"))
        batch_op.drop_index(batch_op.f("ix_lam_invitation_meeting_id"))

    op.drop_table("lam_invitation")
    with op.batch_alter_table("lam_attendee", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lam_attendee_meeting_id"))

    op.drop_table("lam_attendee")
    with op.batch_alter_table("lam_room_owner", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lam_room_owner_user_id"))
        batch_op.drop_index(batch_op.f("ix_lam_room_owner_room_id"))

    op.drop_table("lam_room_owner")
    with op.batch_alter_table("lam_meeting", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lam_meeting_starts_at"))
        batch_op.drop_index(batch_op.f("ix_lam_meeting_room_id"))
        batch_op.drop_index(batch_op.f("ix_lam_meeting_pbx_id"))
        batch_op.drop_index(batch_op.f("ix_lam_meeting_ends_at"))

    op.drop_table("lam_meeting")
    with op.batch_alter_table("lam_settings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lam_settings_pbx_id"))

    op.drop_table("lam_settings")
    with op.batch_alter_table("lam_room", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lam_room_pbx_id"))

    op.drop_table("lam_room")
