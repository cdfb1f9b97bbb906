"""Hotel: settings, outbound classes, templates, rooms, SIP accounts, stays,
cleaning events, the nightly reset guard, and wake-up alarms.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 17:18:32.664592
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kalliope_tel.db.base import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hotel_nightly_reset",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("local_date", sa.String(length=10), nullable=False),
        sa.Column("node", sa.String(length=100), nullable=False),
        sa.Column("rooms", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pbx_id"],
            ["pbx.id"],
            name=op.f("fk_hotel_nightly_reset_pbx_id_pbx"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotel_nightly_reset")),
        sa.UniqueConstraint("pbx_id", "local_date", name=op.f("uq_hotel_nightly_reset_pbx_id")),
    )
    with op.batch_alter_table("hotel_nightly_reset", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hotel_nightly_reset_pbx_id"), ["pbx_id"], unique=False)

    op.create_table(
        "hotel_outbound_class",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("patterns", sa.JSON(), nullable=False),
        sa.Column("trunk_context", sa.String(length=80), nullable=False),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pbx_id"],
            ["pbx.id"],
            name=op.f("fk_hotel_outbound_class_pbx_id_pbx"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotel_outbound_class")),
        sa.UniqueConstraint("pbx_id", "name", name=op.f("uq_hotel_outbound_class_pbx_id")),
    )
    with op.batch_alter_table("hotel_outbound_class", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hotel_outbound_class_pbx_id"), ["pbx_id"], unique=False)

    op.create_table(
        "hotel_room_template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("show_in_phonebook", sa.Boolean(), nullable=True),
        sa.Column(
            "ldap_mode",
            sa.Enum("none", "internal", "public", name="ldap_mode", native_enum=False, length=20),
            nullable=True,
        ),
        sa.Column("organization", sa.String(length=100), nullable=True),
        sa.Column("organizational_unit", sa.String(length=100), nullable=True),
        sa.Column("standard_class_id", sa.Integer(), nullable=True),
        sa.Column("restricted_class_id", sa.Integer(), nullable=True),
        sa.Column("calls_limit", sa.Integer(), nullable=True),
        sa.Column("busy_level", sa.Integer(), nullable=True),
        sa.Column("ring_timeout", sa.Integer(), nullable=True),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pbx_id"],
            ["pbx.id"],
            name=op.f("fk_hotel_room_template_pbx_id_pbx"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["restricted_class_id"],
            ["hotel_outbound_class.id"],
            name=op.f("fk_hotel_room_template_restricted_class_id_hotel_outbound_class"),
        ),
        sa.ForeignKeyConstraint(
            ["standard_class_id"],
            ["hotel_outbound_class.id"],
            name=op.f("fk_hotel_room_template_standard_class_id_hotel_outbound_class"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotel_room_template")),
        sa.UniqueConstraint("pbx_id", "name", name=op.f("uq_hotel_room_template_pbx_id")),
    )
    with op.batch_alter_table("hotel_room_template", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hotel_room_template_pbx_id"), ["pbx_id"], unique=False)

    op.create_table(
        "hotel_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cleaning_enabled", sa.Boolean(), nullable=False),
        sa.Column("cleaning_prefix", sa.String(length=16), nullable=False),
        sa.Column("block_room_to_room", sa.Boolean(), nullable=False),
        sa.Column("nightly_dirty_at", sa.Time(), nullable=False),
        sa.Column("non_room_class_id", sa.Integer(), nullable=True),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["non_room_class_id"],
            ["hotel_outbound_class.id"],
            name=op.f("fk_hotel_settings_non_room_class_id_hotel_outbound_class"),
        ),
        sa.ForeignKeyConstraint(["pbx_id"], ["pbx.id"], name=op.f("fk_hotel_settings_pbx_id_pbx"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotel_settings")),
        sa.UniqueConstraint("pbx_id", name=op.f("uq_hotel_settings_pbx_id")),
    )
    with op.batch_alter_table("hotel_settings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hotel_settings_pbx_id"), ["pbx_id"], unique=False)

    op.create_table(
        "hotel_template_defaults",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("failovers", sa.JSON(), nullable=False),
        sa.Column("show_in_phonebook", sa.Boolean(), nullable=True),
        sa.Column(
            "ldap_mode",
            sa.Enum("none", "internal", "public", name="ldap_mode", native_enum=False, length=20),
            nullable=True,
        ),
        sa.Column("organization", sa.String(length=100), nullable=True),
        sa.Column("organizational_unit", sa.String(length=100), nullable=True),
        sa.Column("standard_class_id", sa.Integer(), nullable=True),
        sa.Column("restricted_class_id", sa.Integer(), nullable=True),
        sa.Column("calls_limit", sa.Integer(), nullable=True),
        sa.Column("busy_level", sa.Integer(), nullable=True),
        sa.Column("ring_timeout", sa.Integer(), nullable=True),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pbx_id"],
            ["pbx.id"],
            name=op.f("fk_hotel_template_defaults_pbx_id_pbx"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["restricted_class_id"],
            ["hotel_outbound_class.id"],
            name=op.f("fk_hotel_template_defaults_restricted_class_id_hotel_outbound_class"),
        ),
        sa.ForeignKeyConstraint(
            ["standard_class_id"],
            ["hotel_outbound_class.id"],
            name=op.f("fk_hotel_template_defaults_standard_class_id_hotel_outbound_class"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotel_template_defaults")),
        sa.UniqueConstraint("pbx_id", name=op.f("uq_hotel_template_defaults_pbx_id")),
    )
    with op.batch_alter_table("hotel_template_defaults", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hotel_template_defaults_pbx_id"), ["pbx_id"], unique=False)

    op.create_table(
        "hotel_room",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("extension", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("clean", sa.Boolean(), nullable=False),
        sa.Column("cleaning_changed_at", UTCDateTime(), nullable=True),
        sa.Column("show_in_phonebook", sa.Boolean(), nullable=True),
        sa.Column(
            "ldap_mode",
            sa.Enum("none", "internal", "public", name="ldap_mode", native_enum=False, length=20),
            nullable=True,
        ),
        sa.Column("organization", sa.String(length=100), nullable=True),
        sa.Column("organizational_unit", sa.String(length=100), nullable=True),
        sa.Column("standard_class_id", sa.Integer(), nullable=True),
        sa.Column("restricted_class_id", sa.Integer(), nullable=True),
        sa.Column("calls_limit", sa.Integer(), nullable=True),
        sa.Column("busy_level", sa.Integer(), nullable=True),
        sa.Column("ring_timeout", sa.Integer(), nullable=True),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["pbx_id"], ["pbx.id"], name=op.f("fk_hotel_room_pbx_id_pbx"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["restricted_class_id"],
            ["hotel_outbound_class.id"],
            name=op.f("fk_hotel_room_restricted_class_id_hotel_outbound_class"),
        ),
        sa.ForeignKeyConstraint(
            ["standard_class_id"],
            ["hotel_outbound_class.id"],
            name=op.f("fk_hotel_room_standard_class_id_hotel_outbound_class"),
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["hotel_room_template.id"],
            name=op.f("fk_hotel_room_template_id_hotel_room_template"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotel_room")),
        sa.UniqueConstraint("pbx_id", "extension", name=op.f("uq_hotel_room_pbx_id")),
    )
    with op.batch_alter_table("hotel_room", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hotel_room_pbx_id"), ["pbx_id"], unique=False)

    op.create_table(
        "hotel_cleaning_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("clean", sa.Boolean(), nullable=False),
        sa.Column(
            "source",
            sa.Enum("phone", "operator", "nightly", name="cleaning_source", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pbx_id"],
            ["pbx.id"],
            name=op.f("fk_hotel_cleaning_event_pbx_id_pbx"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["hotel_room.id"],
            name=op.f("fk_hotel_cleaning_event_room_id_hotel_room"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotel_cleaning_event")),
    )
    with op.batch_alter_table("hotel_cleaning_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hotel_cleaning_event_pbx_id"), ["pbx_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_hotel_cleaning_event_room_id"), ["room_id"], unique=False)

    op.create_table(
        "hotel_failover",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=True),
        sa.Column("room_id", sa.Integer(), nullable=True),
        sa.Column(
            "outcome",
            sa.Enum(
                "noanswer",
                "busy",
                "unavailable",
                name="failover_outcome",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column(
            "origin",
            sa.Enum(
                "internal",
                "external",
                "transfer",
                name="failover_origin",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("destination", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["hotel_room.id"],
            name=op.f("fk_hotel_failover_room_id_hotel_room"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["hotel_room_template.id"],
            name=op.f("fk_hotel_failover_template_id_hotel_room_template"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotel_failover")),
    )
    op.create_table(
        "hotel_stay",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("room_extension", sa.String(length=20), nullable=False),
        sa.Column("owner", sa.String(length=120), nullable=False),
        sa.Column("guests", sa.JSON(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column(
            "outbound",
            sa.Enum("standard", "restricted", name="class_kind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("checkin_at", UTCDateTime(), nullable=False),
        sa.Column("checkout_at", UTCDateTime(), nullable=True),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["pbx_id"], ["pbx.id"], name=op.f("fk_hotel_stay_pbx_id_pbx"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["hotel_room.id"],
            name=op.f("fk_hotel_stay_room_id_hotel_room"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotel_stay")),
    )
    with op.batch_alter_table("hotel_stay", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hotel_stay_checkout_at"), ["checkout_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_hotel_stay_pbx_id"), ["pbx_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_hotel_stay_room_id"), ["room_id"], unique=False)

    op.create_table(
        "sip_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("realm", sa.String(length=64), nullable=False),
        sa.Column("ha1", sa.String(length=32), nullable=False),
        sa.Column("max_contacts", sa.Integer(), nullable=False),
        sa.Column("room_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["pbx_id"], ["pbx.id"], name=op.f("fk_sip_account_pbx_id_pbx"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["hotel_room.id"],
            name=op.f("fk_sip_account_room_id_hotel_room"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sip_account")),
        sa.UniqueConstraint("pbx_id", "username", name=op.f("uq_sip_account_pbx_id")),
    )
    with op.batch_alter_table("sip_account", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sip_account_pbx_id"), ["pbx_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_sip_account_room_id"), ["room_id"], unique=False)

    op.create_table(
        "wakeup_alarm",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("stay_id", sa.Integer(), nullable=True),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "scheduled",
                "in_progress",
                "confirmed",
                "not_answered",
                "acknowledged",
                "cancelled",
                name="alarm_state",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("attempts_override", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["pbx_id"], ["pbx.id"], name=op.f("fk_wakeup_alarm_pbx_id_pbx"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["hotel_room.id"],
            name=op.f("fk_wakeup_alarm_room_id_hotel_room"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["stay_id"],
            ["hotel_stay.id"],
            name=op.f("fk_wakeup_alarm_stay_id_hotel_stay"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wakeup_alarm")),
    )
    with op.batch_alter_table("wakeup_alarm", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wakeup_alarm_due_at"), ["due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_wakeup_alarm_pbx_id"), ["pbx_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_wakeup_alarm_room_id"), ["room_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_wakeup_alarm_state"), ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("wakeup_alarm", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wakeup_alarm_state"))
        batch_op.drop_index(batch_op.f("ix_wakeup_alarm_room_id"))
        batch_op.drop_index(batch_op.f("ix_wakeup_alarm_pbx_id"))
        batch_op.drop_index(batch_op.f("ix_wakeup_alarm_due_at"))

    op.drop_table("wakeup_alarm")
    with op.batch_alter_table("sip_account", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sip_account_room_id"))
        batch_op.drop_index(batch_op.f("ix_sip_account_pbx_id"))

    op.drop_table("sip_account")
    with op.batch_alter_table("hotel_stay", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hotel_stay_room_id"))
        batch_op.drop_index(batch_op.f("ix_hotel_stay_pbx_id"))
        batch_op.drop_index(batch_op.f("ix_hotel_stay_checkout_at"))

    op.drop_table("hotel_stay")
    op.drop_table("hotel_failover")
    with op.batch_alter_table("hotel_cleaning_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hotel_cleaning_event_room_id"))
        batch_op.drop_index(batch_op.f("ix_hotel_cleaning_event_pbx_id"))

    op.drop_table("hotel_cleaning_event")
    with op.batch_alter_table("hotel_room", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hotel_room_pbx_id"))

    op.drop_table("hotel_room")
    with op.batch_alter_table("hotel_template_defaults", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hotel_template_defaults_pbx_id"))

    op.drop_table("hotel_template_defaults")
    with op.batch_alter_table("hotel_settings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hotel_settings_pbx_id"))

    op.drop_table("hotel_settings")
    with op.batch_alter_table("hotel_room_template", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hotel_room_template_pbx_id"))

    op.drop_table("hotel_room_template")
    with op.batch_alter_table("hotel_outbound_class", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hotel_outbound_class_pbx_id"))

    op.drop_table("hotel_outbound_class")
    with op.batch_alter_table("hotel_nightly_reset", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hotel_nightly_reset_pbx_id"))

    op.drop_table("hotel_nightly_reset")
