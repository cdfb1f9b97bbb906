"""Fax service: users, fax settings and archival paths, remote storages,
templates and instances with their users, calls in progress (limits across
nodes), send jobs and attempts, received faxes, mail and archive deliveries.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kalliope_tel.db.base import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("full_name", sa.String(length=120), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["pbx_id"], ["pbx.id"], name=op.f("fk_app_user_pbx_id_pbx"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_user")),
        sa.UniqueConstraint("email", name=op.f("uq_app_user_email")),
        sa.UniqueConstraint("pbx_id", "id", name="uq_app_user_pbx_row"),
        sa.UniqueConstraint("pbx_id", "name", name=op.f("uq_app_user_pbx_id")),
    )
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_app_user_pbx_id"), ["pbx_id"], unique=False)

    op.create_table(
        "fax_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "kind", sa.Enum("mail", "archive", name="fax_delivery_kind", native_enum=False, length=20), nullable=False
        ),
        sa.Column(
            "direction",
            sa.Enum("inbound", "outbound", name="fax_direction", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("fax_id", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=254), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_try_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("done_at", UTCDateTime(), nullable=True),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["pbx_id"], ["pbx.id"], name=op.f("fk_fax_delivery_pbx_id_pbx"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fax_delivery")),
    )
    with op.batch_alter_table("fax_delivery", schema=None) as batch_op:
        batch_op.create_index("ix_fax_delivery_due", ["done", "next_try_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_fax_delivery_pbx_id"), ["pbx_id"], unique=False)

    op.create_table(
        "fax_remote_storage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("directory", sa.String(length=300), nullable=False),
        sa.Column("key_file", sa.String(length=300), nullable=False),
        sa.Column("known_hosts", sa.String(length=300), nullable=False),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pbx_id"], ["pbx.id"], name=op.f("fk_fax_remote_storage_pbx_id_pbx"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fax_remote_storage")),
        sa.UniqueConstraint("pbx_id", "id", name="uq_fax_remote_storage_pbx_row"),
        sa.UniqueConstraint("pbx_id", "name", name=op.f("uq_fax_remote_storage_pbx_id")),
    )
    with op.batch_alter_table("fax_remote_storage", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fax_remote_storage_pbx_id"), ["pbx_id"], unique=False)

    op.create_table(
        "fax_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("max_inbound", sa.Integer(), nullable=False),
        sa.Column("max_outbound", sa.Integer(), nullable=False),
        sa.Column("max_total", sa.Integer(), nullable=False),
        sa.Column("serial_number", sa.String(length=40), nullable=False),
        sa.Column("admissions", sa.Integer(), nullable=False),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["pbx_id"], ["pbx.id"], name=op.f("fk_fax_settings_pbx_id_pbx"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fax_settings")),
        sa.UniqueConstraint("pbx_id", name=op.f("uq_fax_settings_pbx_id")),
    )
    with op.batch_alter_table("fax_settings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fax_settings_pbx_id"), ["pbx_id"], unique=False)

    op.create_table(
        "fax_archive_path",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column(
            "kind", sa.Enum("local", "remote", name="storage_kind", native_enum=False, length=20), nullable=False
        ),
        sa.Column("directory", sa.String(length=300), nullable=False),
        sa.Column("storage_id", sa.Integer(), nullable=True),
        sa.Column(
            "encryption",
            sa.Enum("none", "builtin", name="archive_encryption", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pbx_id", "storage_id"],
            ["fax_remote_storage.pbx_id", "fax_remote_storage.id"],
            name="fk_fax_archive_path_storage_id_same_pbx",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["pbx_id"], ["pbx.id"], name=op.f("fk_fax_archive_path_pbx_id_pbx"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fax_archive_path")),
        sa.UniqueConstraint("pbx_id", "id", name="uq_fax_archive_path_pbx_row"),
    )
    with op.batch_alter_table("fax_archive_path", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fax_archive_path_pbx_id"), ["pbx_id"], unique=False)

    op.create_table(
        "fax_template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("local_ident", sa.String(length=20), nullable=True),
        sa.Column("header", sa.String(length=50), nullable=True),
        sa.Column("max_total", sa.Integer(), nullable=True),
        sa.Column("ecm", sa.Boolean(), nullable=True),
        sa.Column("min_rate", sa.Integer(), nullable=True),
        sa.Column("max_rate", sa.Integer(), nullable=True),
        sa.Column("modem", sa.String(length=40), nullable=True),
        sa.Column("receive_enabled", sa.Boolean(), nullable=True),
        sa.Column("max_inbound", sa.Integer(), nullable=True),
        sa.Column("send_enabled", sa.Boolean(), nullable=True),
        sa.Column("max_outbound", sa.Integer(), nullable=True),
        sa.Column("outbound_class_id", sa.Integer(), nullable=True),
        sa.Column("max_attempts", sa.Integer(), nullable=True),
        sa.Column("retry_minutes", sa.Float(), nullable=True),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pbx_id", "outbound_class_id"],
            ["hotel_outbound_class.pbx_id", "hotel_outbound_class.id"],
            name="fk_fax_template_outbound_class_id_same_pbx",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(["pbx_id"], ["pbx.id"], name=op.f("fk_fax_template_pbx_id_pbx"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fax_template")),
        sa.UniqueConstraint("pbx_id", "id", name="uq_fax_template_pbx_row"),
        sa.UniqueConstraint("pbx_id", "name", name=op.f("uq_fax_template_pbx_id")),
    )
    with op.batch_alter_table("fax_template", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fax_template_pbx_id"), ["pbx_id"], unique=False)

    op.create_table(
        "fax_instance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("selection", sa.String(length=20), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=True),
        sa.Column("mail2fax_box", sa.String(length=254), nullable=False),
        sa.Column(
            "mail2fax_auth", sa.Enum("none", "pin", name="mail2fax_auth", native_enum=False, length=20), nullable=False
        ),
        sa.Column("mail2fax_pin", sa.String(length=16), nullable=False),
        sa.Column(
            "mail2fax_encryption",
            sa.Enum("none", "pgp", name="mail2fax_encryption", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column(
            "archive_prefix",
            sa.Enum(
                "none",
                "pbx",
                "instance",
                "selection",
                "year",
                "year-month",
                "date",
                name="archive_prefix",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("archive_path", sa.String(length=200), nullable=False),
        sa.Column(
            "archive_suffix",
            sa.Enum(
                "none",
                "pbx",
                "instance",
                "selection",
                "year",
                "year-month",
                "date",
                name="archive_suffix",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column(
            "archive_separation",
            sa.Enum("none", "before-prefix", "after-suffix", name="archive_separation", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("local_ident", sa.String(length=20), nullable=True),
        sa.Column("header", sa.String(length=50), nullable=True),
        sa.Column("max_total", sa.Integer(), nullable=True),
        sa.Column("ecm", sa.Boolean(), nullable=True),
        sa.Column("min_rate", sa.Integer(), nullable=True),
        sa.Column("max_rate", sa.Integer(), nullable=True),
        sa.Column("modem", sa.String(length=40), nullable=True),
        sa.Column("receive_enabled", sa.Boolean(), nullable=True),
        sa.Column("max_inbound", sa.Integer(), nullable=True),
        sa.Column("send_enabled", sa.Boolean(), nullable=True),
        sa.Column("max_outbound", sa.Integer(), nullable=True),
        sa.Column("outbound_class_id", sa.Integer(), nullable=True),
        sa.Column("max_attempts", sa.Integer(), nullable=True),
        sa.Column("retry_minutes", sa.Float(), nullable=True),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pbx_id", "outbound_class_id"],
            ["hotel_outbound_class.pbx_id", "hotel_outbound_class.id"],
            name="fk_fax_instance_outbound_class_id_same_pbx",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["pbx_id", "template_id"],
            ["fax_template.pbx_id", "fax_template.id"],
            name="fk_fax_instance_template_id_same_pbx",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(["pbx_id"], ["pbx.id"], name=op.f("fk_fax_instance_pbx_id_pbx"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fax_instance")),
        sa.UniqueConstraint("pbx_id", "id", name="uq_fax_instance_pbx_row"),
        sa.UniqueConstraint("pbx_id", "name", name="uq_fax_instance_name"),
        sa.UniqueConstraint("pbx_id", "selection", name="uq_fax_instance_selection"),
    )
    with op.batch_alter_table("fax_instance", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fax_instance_pbx_id"), ["pbx_id"], unique=False)

    op.create_table(
        "fax_instance_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column(
            "permission",
            sa.Enum("receive", "send", "both", name="fax_permission", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pbx_id", "instance_id"],
            ["fax_instance.pbx_id", "fax_instance.id"],
            name="fk_fax_instance_user_instance_id_same_pbx",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pbx_id", "user_id"],
            ["app_user.pbx_id", "app_user.id"],
            name="fk_fax_instance_user_user_id_same_pbx",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pbx_id"], ["pbx.id"], name=op.f("fk_fax_instance_user_pbx_id_pbx"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fax_instance_user")),
        sa.UniqueConstraint("instance_id", "user_id", name=op.f("uq_fax_instance_user_instance_id")),
    )
    with op.batch_alter_table("fax_instance_user", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fax_instance_user_pbx_id"), ["pbx_id"], unique=False)

    op.create_table(
        "fax_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "queued",
                "dialling",
                "sending",
                "waiting",
                "sent",
                "failed",
                "cancelled",
                name="fax_job_state",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("document", sa.String(length=500), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("origin", sa.String(length=20), nullable=False),
        sa.Column("attempts_made", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("report", sa.String(length=500), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pbx_id", "instance_id"],
            ["fax_instance.pbx_id", "fax_instance.id"],
            name="fk_fax_job_instance_id_same_pbx",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["pbx_id", "user_id"], ["app_user.pbx_id", "app_user.id"], name="fk_fax_job_user_id_same_pbx"
        ),
        sa.ForeignKeyConstraint(["pbx_id"], ["pbx.id"], name=op.f("fk_fax_job_pbx_id_pbx"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fax_job")),
        sa.UniqueConstraint("pbx_id", "id", name="uq_fax_job_pbx_row"),
    )
    with op.batch_alter_table("fax_job", schema=None) as batch_op:
        batch_op.create_index("ix_fax_job_due", ["state", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_fax_job_pbx_id"), ["pbx_id"], unique=False)

    op.create_table(
        "fax_received",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=100), nullable=False),
        sa.Column("calling", sa.String(length=40), nullable=False),
        sa.Column("reached", sa.String(length=40), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("bit_rate", sa.Integer(), nullable=False),
        sa.Column("ecm", sa.Boolean(), nullable=False),
        sa.Column("remote_ident", sa.String(length=40), nullable=False),
        sa.Column(
            "media", sa.Enum("engine", "asterisk", name="fax_media", native_enum=False, length=20), nullable=False
        ),
        sa.Column("document", sa.String(length=500), nullable=False),
        sa.Column("file_name", sa.String(length=200), nullable=False),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pbx_id", "instance_id"],
            ["fax_instance.pbx_id", "fax_instance.id"],
            name="fk_fax_received_instance_id_same_pbx",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(["pbx_id"], ["pbx.id"], name=op.f("fk_fax_received_pbx_id_pbx"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fax_received")),
        sa.UniqueConstraint("pbx_id", "id", name="uq_fax_received_pbx_row"),
    )
    with op.batch_alter_table("fax_received", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fax_received_pbx_id"), ["pbx_id"], unique=False)

    op.create_table(
        "fax_slot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column(
            "direction",
            sa.Enum("inbound", "outbound", name="fax_direction", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("node", sa.String(length=100), nullable=False),
        sa.Column("call_id", sa.String(length=100), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pbx_id", "instance_id"],
            ["fax_instance.pbx_id", "fax_instance.id"],
            name="fk_fax_slot_instance_id_same_pbx",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["pbx_id"], ["pbx.id"], name=op.f("fk_fax_slot_pbx_id_pbx"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fax_slot")),
    )
    with op.batch_alter_table("fax_slot", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fax_slot_pbx_id"), ["pbx_id"], unique=False)

    op.create_table(
        "fax_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(length=100), nullable=False),
        sa.Column("call_id", sa.String(length=100), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("ok", sa.Boolean(), nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("bit_rate", sa.Integer(), nullable=False),
        sa.Column("ecm", sa.Boolean(), nullable=False),
        sa.Column("remote_ident", sa.String(length=40), nullable=False),
        sa.Column(
            "media", sa.Enum("engine", "asterisk", name="fax_media", native_enum=False, length=20), nullable=False
        ),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pbx_id", "job_id"],
            ["fax_job.pbx_id", "fax_job.id"],
            name="fk_fax_attempt_job_id_same_pbx",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["pbx_id"], ["pbx.id"], name=op.f("fk_fax_attempt_pbx_id_pbx"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fax_attempt")),
        sa.UniqueConstraint("job_id", "number", name=op.f("uq_fax_attempt_job_id")),
    )
    with op.batch_alter_table("fax_attempt", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fax_attempt_pbx_id"), ["pbx_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("fax_attempt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fax_attempt_pbx_id"))

    op.drop_table("fax_attempt")
    with op.batch_alter_table("fax_slot", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fax_slot_pbx_id"))

    op.drop_table("fax_slot")
    with op.batch_alter_table("fax_received", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fax_received_pbx_id"))

    op.drop_table("fax_received")
    with op.batch_alter_table("fax_job", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fax_job_pbx_id"))
        batch_op.drop_index("ix_fax_job_due")

    op.drop_table("fax_job")
    with op.batch_alter_table("fax_instance_user", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fax_instance_user_pbx_id"))

    op.drop_table("fax_instance_user")
    with op.batch_alter_table("fax_instance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fax_instance_pbx_id"))

    op.drop_table("fax_instance")
    with op.batch_alter_table("fax_template", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fax_template_pbx_id"))

    op.drop_table("fax_template")
    with op.batch_alter_table("fax_archive_path", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fax_archive_path_pbx_id"))

    op.drop_table("fax_archive_path")
    with op.batch_alter_table("fax_settings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fax_settings_pbx_id"))

    op.drop_table("fax_settings")
    with op.batch_alter_table("fax_remote_storage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fax_remote_storage_pbx_id"))

    op.drop_table("fax_remote_storage")
    with op.batch_alter_table("fax_delivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fax_delivery_pbx_id"))
        batch_op.drop_index("ix_fax_delivery_due")

    op.drop_table("fax_delivery")
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_app_user_pbx_id"))

    op.drop_table("app_user")
