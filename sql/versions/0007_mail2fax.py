"""Mail2Fax: boxes, the ledger of requests read from them, and users' PGP
public keys (for the "PGP signature" authentication).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kalliope_tel.db.base import UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mail2fax_box",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("address", sa.String(length=254), nullable=False),
        sa.Column(
            "protocol", sa.Enum("imap", "pop3", name="mail2fax_protocol", native_enum=False, length=20), nullable=False
        ),
        sa.Column("ssl", sa.Boolean(), nullable=False),
        sa.Column("server", sa.String(length=253), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("timeout", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=254), nullable=False),
        sa.Column("password", sa.String(length=200), nullable=False),
        sa.Column("ca_file", sa.String(length=500), nullable=False),
        sa.Column("folder", sa.String(length=200), nullable=False),
        sa.Column("processed_folder", sa.String(length=200), nullable=False),
        sa.Column("poll_seconds", sa.Integer(), nullable=False),
        sa.Column("max_bytes", sa.Integer(), nullable=False),
        sa.Column("pgp_key", sa.Text(), nullable=False),
        sa.Column("pgp_fingerprint", sa.String(length=40), nullable=False),
        sa.Column("holder", sa.String(length=100), nullable=True),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("last_ok_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["pbx_id"], ["pbx.id"], name=op.f("fk_mail2fax_box_pbx_id_pbx"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail2fax_box")),
        sa.UniqueConstraint("address", name=op.f("uq_mail2fax_box_address")),
        sa.UniqueConstraint("pbx_id", "id", name="uq_mail2fax_box_pbx_row"),
        sa.UniqueConstraint("pbx_id", "name", name=op.f("uq_mail2fax_box_pbx_id")),
    )
    with op.batch_alter_table("mail2fax_box", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mail2fax_box_pbx_id"), ["pbx_id"], unique=False)

    op.create_table(
        "mail2fax_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("box_id", sa.Integer(), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("uid", sa.String(length=100), nullable=False),
        sa.Column("message_id", sa.String(length=300), nullable=False),
        sa.Column("sender", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column(
            "outcome",
            sa.Enum("accepted", "refused", "dropped", name="mail2fax_outcome", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("node", sa.String(length=100), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("settled", sa.Boolean(), nullable=False),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pbx_id", "box_id"],
            ["mail2fax_box.pbx_id", "mail2fax_box.id"],
            name="fk_mail2fax_request_box_id_same_pbx",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pbx_id"], ["pbx.id"], name=op.f("fk_mail2fax_request_pbx_id_pbx"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail2fax_request")),
        sa.UniqueConstraint("box_id", "uidvalidity", "uid", name=op.f("uq_mail2fax_request_box_id")),
    )
    with op.batch_alter_table("mail2fax_request", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mail2fax_request_pbx_id"), ["pbx_id"], unique=False)
        batch_op.create_index("ix_mail2fax_request_unsettled", ["box_id", "settled"], unique=False)

    # Plain ADD COLUMN (no batch rebuild of a table other tables point at),
    # with a default for the users already there.
    op.add_column("app_user", sa.Column("pgp_public_key", sa.Text(), nullable=False, server_default=""))
    op.add_column("app_user", sa.Column("pgp_fingerprint", sa.String(length=40), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_column("pgp_fingerprint")
        batch_op.drop_column("pgp_public_key")

    with op.batch_alter_table("mail2fax_request", schema=None) as batch_op:
        batch_op.drop_index("ix_mail2fax_request_unsettled")
        batch_op.drop_index(batch_op.f("ix_mail2fax_request_pbx_id"))

    op.drop_table("mail2fax_request")
    with op.batch_alter_table("mail2fax_box", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mail2fax_box_pbx_id"))

    op.drop_table("mail2fax_box")
