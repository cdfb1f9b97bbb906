"""Web: passwords and roles of users, sessions, the audit of logins and
actions, and the change feed of the live panels (with its PostgreSQL
NOTIFY trigger).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 13:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kalliope_tel.db.base import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The doorbell: a commit that wrote change rows wakes every node's feed once
# (a statement-level trigger: one NOTIFY per statement, not per row; PostgreSQL
# folds identical notifications of one transaction into one).
NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION kalliope_live_change_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('kalliope_live_change', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""
NOTIFY_TRIGGER = """
CREATE TRIGGER live_change_notify AFTER INSERT ON live_change
FOR EACH STATEMENT EXECUTE FUNCTION kalliope_live_change_notify()
"""


def upgrade() -> None:
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("password_hash", sa.String(length=200), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("password_generation", sa.Integer(), nullable=False, server_default="0"))

    op.create_table(
        "app_user_role",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column(
            "role",
            sa.Enum("admin", "receptionist", "fax", name="user_role", native_enum=False, length=20),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_app_user_role_user_id_app_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_user_role")),
        sa.UniqueConstraint("user_id", "role", name=op.f("uq_app_user_role_user_id")),
    )
    with op.batch_alter_table("app_user_role", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_app_user_role_user_id"), ["user_id"], unique=False)

    op.create_table(
        "web_session",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_web_session_user_id_app_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_web_session")),
    )
    with op.batch_alter_table("web_session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_web_session_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_web_session_user_id"), ["user_id"], unique=False)

    op.create_table(
        "web_audit",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("login", sa.String(length=254), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("pbx_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=80), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["pbx_id"], ["pbx.id"], name=op.f("fk_web_audit_pbx_id_pbx"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_web_audit_user_id_app_user"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_audit")),
    )
    with op.batch_alter_table("web_audit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_web_audit_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_web_audit_ip"), ["ip"], unique=False)
        batch_op.create_index(batch_op.f("ix_web_audit_login"), ["login"], unique=False)

    op.create_table(
        "live_change",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("pbx_id", sa.Integer(), nullable=False),
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_change")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("live_change", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_live_change_at"), ["at"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(NOTIFY_FUNCTION)
        op.execute(NOTIFY_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS live_change_notify ON live_change")
        op.execute("DROP FUNCTION IF EXISTS kalliope_live_change_notify()")
    op.drop_table("live_change")
    op.drop_table("web_audit")
    op.drop_table("web_session")
    op.drop_table("app_user_role")
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_column("password_generation")
        batch_op.drop_column("password_hash")
