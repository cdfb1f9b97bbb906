"""Extensions become a core part of the store: ``extension`` (number,
licence Start or Plus, status, the PBX user behind it), its service PIN
(``extension_pin``), SIP accounts given to an extension (``extension_id``
instead of the room's ``room_id``), and a hotel room references its
extension by ``(pbx_id, number)``. Every room becomes an extension with its
number and name; its accounts stay its accounts. PBXs get their kind, their
purchased licences, the call-centre licence, their own suspension and the hotel module's switch
(on for every existing PBX: nothing they do stops).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 02:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kalliope_tel.db.base import UTCDateTime

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pbx", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "kind",
                sa.Enum("single", "shared", "group", name="pbx_kind", native_enum=False, length=20),
                nullable=False,
                server_default="single",
            )
        )
        batch_op.add_column(sa.Column("start_licences", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("plus_licences", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("call_centre", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("suspended", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("hotel_enabled", sa.Boolean(), nullable=False, server_default=sa.true()))

    op.create_table(
        "extension",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("licence", sa.Enum("start", "plus", name="licence", native_enum=False, length=20), nullable=False),
        sa.Column(
            "status",
            sa.Enum("active", "suspended", name="extension_status", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["pbx_id"], ["pbx.id"], name=op.f("fk_extension_pbx_id_pbx"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_extension_user_id_app_user"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_extension")),
        sa.UniqueConstraint("pbx_id", "id", name="uq_extension_pbx_row"),
        sa.UniqueConstraint("pbx_id", "number", name=op.f("uq_extension_pbx_id")),
    )
    with op.batch_alter_table("extension", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_extension_pbx_id"), ["pbx_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_extension_user_id"), ["user_id"], unique=False)

    op.create_table(
        "extension_pin",
        sa.Column("extension_id", sa.Integer(), nullable=False),
        sa.Column("pin_hash", sa.String(length=160), nullable=False),
        sa.ForeignKeyConstraint(
            ["extension_id"], ["extension.id"], name=op.f("fk_extension_pin_extension_id_extension"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("extension_id", name=op.f("pk_extension_pin")),
    )

    # Every room is an extension with its number and name.
    op.execute(
        "INSERT INTO extension (pbx_id, number, name, licence, status, created_at) "
        "SELECT pbx_id, extension, name, 'start', 'active', CURRENT_TIMESTAMP FROM hotel_room"
    )
    with op.batch_alter_table("sip_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("extension_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE sip_account SET extension_id = (SELECT e.id FROM extension e JOIN hotel_room r"
        " ON r.pbx_id = e.pbx_id AND r.extension = e.number WHERE r.id = sip_account.room_id)"
        " WHERE room_id IS NOT NULL"
    )
    with op.batch_alter_table("sip_account", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sip_account_room_id"))
        batch_op.drop_constraint(batch_op.f("fk_sip_account_room_id_hotel_room"), type_="foreignkey")
        batch_op.drop_column("room_id")
        batch_op.create_index(batch_op.f("ix_sip_account_extension_id"), ["extension_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_sip_account_extension_id_extension"),
            "extension",
            ["extension_id"],
            ["id"],
            ondelete="CASCADE",
        )
    # A Plus extension's personal meeting room.
    with op.batch_alter_table("lam_room", schema=None) as batch_op:
        batch_op.add_column(sa.Column("extension_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_lam_room_extension_id"), ["extension_id"], unique=True)
        batch_op.create_foreign_key(
            batch_op.f("fk_lam_room_extension_id_extension"), "extension", ["extension_id"], ["id"], ondelete="CASCADE"
        )
    # The apply lease: one serve node at a time writes and reloads a PBX's change.
    with op.batch_alter_table("pbx_config_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("lease_until", UTCDateTime(), nullable=True))
    # A removed user's faxes lose their sender by the key itself (the users
    # service no longer reaches into the fax tables).
    with op.batch_alter_table("fax_job", schema=None) as batch_op:
        batch_op.drop_constraint("fk_fax_job_user_id_same_pbx", type_="foreignkey")
        batch_op.create_index(batch_op.f("ix_fax_job_user_id"), ["user_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_fax_job_user_id_app_user"), "app_user", ["user_id"], ["id"], ondelete="SET NULL"
        )
    with op.batch_alter_table("hotel_room", schema=None) as batch_op:
        batch_op.create_foreign_key(
            "fk_hotel_room_extension",
            "extension",
            ["pbx_id", "extension"],
            ["pbx_id", "number"],
            ondelete="CASCADE",
            onupdate="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("lam_room", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_lam_room_extension_id_extension"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_lam_room_extension_id"))
        batch_op.drop_column("extension_id")
    with op.batch_alter_table("pbx_config_state", schema=None) as batch_op:
        batch_op.drop_column("lease_until")
        batch_op.drop_column("claimed_by")
    with op.batch_alter_table("fax_job", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_fax_job_user_id_app_user"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_fax_job_user_id"))
        batch_op.create_foreign_key("fk_fax_job_user_id_same_pbx", "app_user", ["pbx_id", "user_id"], ["pbx_id", "id"])
    with op.batch_alter_table("hotel_room", schema=None) as batch_op:
        batch_op.drop_constraint("fk_hotel_room_extension", type_="foreignkey")
    with op.batch_alter_table("sip_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("room_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE sip_account SET room_id = (SELECT r.id FROM hotel_room r JOIN extension e"
        " ON r.pbx_id = e.pbx_id AND r.extension = e.number WHERE e.id = sip_account.extension_id)"
        " WHERE extension_id IS NOT NULL"
    )
    with op.batch_alter_table("sip_account", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_sip_account_extension_id_extension"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_sip_account_extension_id"))
        batch_op.drop_column("extension_id")
        batch_op.create_index(batch_op.f("ix_sip_account_room_id"), ["room_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_sip_account_room_id_hotel_room"), "hotel_room", ["room_id"], ["id"], ondelete="SET NULL"
        )
    op.drop_table("extension_pin")
    with op.batch_alter_table("extension", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_extension_user_id"))
        batch_op.drop_index(batch_op.f("ix_extension_pbx_id"))
    op.drop_table("extension")
    with op.batch_alter_table("pbx", schema=None) as batch_op:
        batch_op.drop_column("hotel_enabled")
        batch_op.drop_column("suspended")
        batch_op.drop_column("call_centre")
        batch_op.drop_column("plus_licences")
        batch_op.drop_column("start_licences")
        batch_op.drop_column("kind")
