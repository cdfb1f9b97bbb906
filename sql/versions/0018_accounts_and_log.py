"""One account per person: ``account`` (e-mail, password, second factor)
with memberships in companies (``company_member``) and PBXs (``app_user``
becomes the PBX membership). Every PBX user becomes an account with their
address, name and password; their fax permissions, PGP key and meeting
rooms stay on the membership, untouched. Reset links move to the account.
Web sessions end (people log in again); the login audit keeps its rows.
Also the append-only log of operations (``oplog_entry``).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 22:31:55.829344
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kalliope_tel.db.base import UTCDateTime

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_APPEND_ONLY = {
    "sqlite": [
        "CREATE TRIGGER oplog_entry_append_only BEFORE UPDATE ON oplog_entry"
        " BEGIN SELECT RAISE(ABORT, 'the log of operations is append-only'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION oplog_entry_append_only() RETURNS trigger AS $$"
        " BEGIN RAISE EXCEPTION 'the log of operations is append-only'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER oplog_entry_append_only BEFORE UPDATE ON oplog_entry"
        " FOR EACH ROW EXECUTE FUNCTION oplog_entry_append_only()",
    ],
}


def _role(name: str) -> sa.Enum:
    return sa.Enum("admin", "read_only", name=name, native_enum=False, length=20)


def upgrade() -> None:
    op.create_table(
        "account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("first_name", sa.String(length=80), nullable=False),
        sa.Column("last_name", sa.String(length=80), nullable=False),
        sa.Column(
            "status",
            sa.Enum("invited", "active", "suspended", name="account_status", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("password_generation", sa.Integer(), nullable=False),
        sa.Column("totp_secret", sa.String(length=64), nullable=False),
        sa.Column("totp_pending", sa.String(length=64), nullable=False),
        sa.Column("totp_last_step", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account")),
        sa.UniqueConstraint("email", name=op.f("uq_account_email")),
    )
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_created_at"), ["created_at"], unique=False)

    op.create_table(
        "account_recovery_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["account.id"], name=op.f("fk_account_recovery_code_account_id_account"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_recovery_code")),
    )
    with op.batch_alter_table("account_recovery_code", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_recovery_code_account_id"), ["account_id"], unique=False)

    op.create_table(
        "company_member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("console_role", _role("console_role"), nullable=True),
        sa.Column("manager_role", _role("manager_role"), nullable=True),
        sa.Column("manage_customers", sa.Boolean(), nullable=False),
        sa.Column("department", sa.String(length=80), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["account.id"], name=op.f("fk_company_member_account_id_account"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["company_id"], ["company.id"], name=op.f("fk_company_member_company_id_company"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_company_member")),
        sa.UniqueConstraint("account_id", "company_id", name=op.f("uq_company_member_account_id")),
    )
    with op.batch_alter_table("company_member", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_company_member_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_company_member_company_id"), ["company_id"], unique=False)

    op.create_table(
        "oplog_entry",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=True),
        sa.Column("operation", sa.String(length=60), nullable=False),
        sa.Column("object_kind", sa.String(length=30), nullable=False),
        sa.Column("object_label", sa.String(length=200), nullable=False),
        sa.Column("actor", sa.String(length=254), nullable=False),
        sa.Column("via", sa.String(length=10), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["company_id"], ["company.id"], name=op.f("fk_oplog_entry_company_id_company"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oplog_entry")),
    )
    with op.batch_alter_table("oplog_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oplog_entry_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_oplog_entry_company_id"), ["company_id"], unique=False)
    for statement in _APPEND_ONLY.get(op.get_bind().dialect.name, []):
        op.execute(statement)

    with op.batch_alter_table("company", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("pbx_users_second_factor", sa.Boolean(), nullable=False, server_default=sa.false())
        )

    _accounts_from_users()
    _memberships()


def _accounts_from_users() -> None:
    """One account per PBX user (addresses are already unique), the full
    name split at its first space into first and last name."""
    op.execute(
        "INSERT INTO account (email, first_name, last_name, status, created_at, password_hash,"
        " password_generation, totp_secret, totp_pending, totp_last_step)"
        " SELECT email, '', '', 'active', created_at, password_hash, password_generation, '', '', 0 FROM app_user"
    )
    bind = op.get_bind()
    for email, full_name in bind.execute(sa.text("SELECT email, full_name FROM app_user")).all():
        first, _, last = (full_name or "").strip().partition(" ")
        bind.execute(
            sa.text("UPDATE account SET first_name = :first, last_name = :last WHERE email = :email"),
            {"first": first[:80], "last": last.strip()[:80], "email": email},
        )


def _memberships() -> None:
    by_email = "(SELECT account.id FROM account WHERE account.email = app_user.email)"
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("account_id", sa.Integer(), nullable=True))
    op.execute(f"UPDATE app_user SET account_id = {by_email}")  # noqa: S608 (fixed text, no input)
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.alter_column("account_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_constraint(batch_op.f("uq_app_user_email"), type_="unique")
        batch_op.create_unique_constraint("uq_app_user_pbx_account", ["pbx_id", "account_id"])
        batch_op.create_index(batch_op.f("ix_app_user_account_id"), ["account_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_app_user_account_id_account"), "account", ["account_id"], ["id"], ondelete="CASCADE"
        )

    of_user = "(SELECT app_user.account_id FROM app_user WHERE app_user.id = {table}.user_id)"
    with op.batch_alter_table("app_password_reset", schema=None) as batch_op:
        batch_op.add_column(sa.Column("account_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "kind",
                sa.Enum("reset", "invite", name="link_kind", native_enum=False, length=20),
                nullable=False,
                server_default="reset",
            )
        )
    op.execute(f"UPDATE app_password_reset SET account_id = {of_user.format(table='app_password_reset')}")  # noqa: S608
    with op.batch_alter_table("app_password_reset", schema=None) as batch_op:
        batch_op.alter_column("account_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_index(batch_op.f("ix_app_password_reset_pbx_id"))
        batch_op.drop_index(batch_op.f("ix_app_password_reset_user_id"))
        batch_op.create_index(batch_op.f("ix_app_password_reset_account_id"), ["account_id"], unique=False)
        batch_op.drop_constraint(batch_op.f("fk_app_password_reset_pbx_id_pbx"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_app_password_reset_user_id_app_user"), type_="foreignkey")
        batch_op.create_foreign_key(
            batch_op.f("fk_app_password_reset_account_id_account"),
            "account",
            ["account_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.drop_column("pbx_id")
        batch_op.drop_column("user_id")

    with op.batch_alter_table("web_audit", schema=None) as batch_op:
        batch_op.add_column(sa.Column("account_id", sa.Integer(), nullable=True))
    op.execute(f"UPDATE web_audit SET account_id = {of_user.format(table='web_audit')}")  # noqa: S608
    with op.batch_alter_table("web_audit", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_web_audit_user_id_app_user"), type_="foreignkey")
        batch_op.create_foreign_key(
            batch_op.f("fk_web_audit_account_id_account"), "account", ["account_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.drop_column("user_id")

    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_column("password_generation")
        batch_op.drop_column("email")
        batch_op.drop_column("password_hash")
        batch_op.drop_column("full_name")

    op.execute("DELETE FROM web_session")  # opened for a user row: people log in again
    with op.batch_alter_table("web_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("account_id", sa.Integer(), nullable=False))
        batch_op.add_column(sa.Column("stage", sa.String(length=20), nullable=False))
        batch_op.add_column(sa.Column("company_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("view_company_id", sa.Integer(), nullable=True))
        batch_op.drop_index(batch_op.f("ix_web_session_user_id"))
        batch_op.create_index(batch_op.f("ix_web_session_account_id"), ["account_id"], unique=False)
        batch_op.drop_constraint(batch_op.f("fk_web_session_user_id_app_user"), type_="foreignkey")
        batch_op.create_foreign_key(
            batch_op.f("fk_web_session_company_id_company"), "company", ["company_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_web_session_account_id_account"), "account", ["account_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_web_session_view_company_id_company"),
            "company",
            ["view_company_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.drop_column("user_id")


def downgrade() -> None:
    """Back to a user per PBX: each membership takes its account's address,
    name and password (an account in several PBXs cannot keep one address
    in each; the extra memberships are dropped). Company memberships, second
    factors and the log go."""
    op.execute("DELETE FROM web_session")
    with op.batch_alter_table("web_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_id", sa.Integer(), nullable=False))
        batch_op.drop_constraint(batch_op.f("fk_web_session_view_company_id_company"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_web_session_account_id_account"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_web_session_company_id_company"), type_="foreignkey")
        batch_op.create_foreign_key(
            batch_op.f("fk_web_session_user_id_app_user"), "app_user", ["user_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.drop_index(batch_op.f("ix_web_session_account_id"))
        batch_op.create_index(batch_op.f("ix_web_session_user_id"), ["user_id"], unique=False)
        batch_op.drop_column("view_company_id")
        batch_op.drop_column("company_id")
        batch_op.drop_column("stage")
        batch_op.drop_column("account_id")

    op.execute("DELETE FROM app_user WHERE id NOT IN (SELECT min(id) FROM app_user GROUP BY account_id)")
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("full_name", sa.String(length=120), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("password_hash", sa.String(length=200), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("email", sa.String(length=254), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("password_generation", sa.Integer(), nullable=False, server_default="0"))
    for column, source in (
        ("email", "account.email"),
        ("full_name", "trim(account.first_name || ' ' || account.last_name)"),
        ("password_hash", "account.password_hash"),
        ("password_generation", "account.password_generation"),
    ):
        op.execute(
            f"UPDATE app_user SET {column} = (SELECT {source} FROM account WHERE account.id = app_user.account_id)"  # noqa: S608
        )

    with op.batch_alter_table("web_audit", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_id", sa.Integer(), nullable=True))
        batch_op.drop_constraint(batch_op.f("fk_web_audit_account_id_account"), type_="foreignkey")
        batch_op.create_foreign_key(
            batch_op.f("fk_web_audit_user_id_app_user"), "app_user", ["user_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.drop_column("account_id")

    op.execute("DELETE FROM app_password_reset")
    with op.batch_alter_table("app_password_reset", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_id", sa.Integer(), nullable=False))
        batch_op.add_column(sa.Column("pbx_id", sa.Integer(), nullable=False))
        batch_op.drop_constraint(batch_op.f("fk_app_password_reset_account_id_account"), type_="foreignkey")
        batch_op.create_foreign_key(
            batch_op.f("fk_app_password_reset_user_id_app_user"), "app_user", ["user_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_app_password_reset_pbx_id_pbx"), "pbx", ["pbx_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.drop_index(batch_op.f("ix_app_password_reset_account_id"))
        batch_op.create_index(batch_op.f("ix_app_password_reset_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_app_password_reset_pbx_id"), ["pbx_id"], unique=False)
        batch_op.drop_column("kind")
        batch_op.drop_column("account_id")

    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_app_user_account_id_account"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_app_user_account_id"))
        batch_op.drop_constraint("uq_app_user_pbx_account", type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_app_user_email"), ["email"])
        batch_op.drop_column("account_id")

    with op.batch_alter_table("company", schema=None) as batch_op:
        batch_op.drop_column("pbx_users_second_factor")

    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER oplog_entry_append_only ON oplog_entry")
        op.execute("DROP FUNCTION oplog_entry_append_only()")
    op.drop_table("oplog_entry")
    op.drop_table("company_member")
    op.drop_table("account_recovery_code")
    op.drop_table("account")
