"""Composite keys: no row can refer to another PBX's row.

Rooms, templates and outbound classes get ``UNIQUE (pbx_id, id)``; what
refers to them does so by ``(pbx_id, <ref>_id)``, so the database itself
refuses a stay, cleaning event, alarm, template or class reference of another
PBX. (``sip_account.room_id`` and ``wakeup_alarm.stay_id`` keep single-column
keys: they are ``ON DELETE SET NULL``, which on a composite key would also
null ``pbx_id``.)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLASS = "hotel_outbound_class"
# (table, column, parent, ondelete, the single-column key it replaces)
REFS = [
    ("hotel_room_template", "standard_class_id", CLASS, None),
    ("hotel_room_template", "restricted_class_id", CLASS, None),
    ("hotel_room", "standard_class_id", CLASS, None),
    ("hotel_room", "restricted_class_id", CLASS, None),
    ("hotel_room", "template_id", "hotel_room_template", "RESTRICT"),
    ("hotel_template_defaults", "standard_class_id", CLASS, None),
    ("hotel_template_defaults", "restricted_class_id", CLASS, None),
    ("hotel_settings", "non_room_class_id", CLASS, None),
    ("hotel_stay", "room_id", "hotel_room", "CASCADE"),
    ("hotel_cleaning_event", "room_id", "hotel_room", "CASCADE"),
    ("wakeup_alarm", "room_id", "hotel_room", "CASCADE"),
]
PARENTS = [CLASS, "hotel_room_template", "hotel_room"]
ORDER = [
    CLASS,
    "hotel_room_template",
    "hotel_room",
    "hotel_template_defaults",
    "hotel_settings",
    "hotel_stay",
    "hotel_cleaning_event",
    "wakeup_alarm",
]


def upgrade() -> None:
    for table in ORDER:
        with op.batch_alter_table(table) as batch:
            if table in PARENTS:
                batch.create_unique_constraint(f"uq_{table}_pbx_row", ["pbx_id", "id"])
            for t, column, parent, ondelete in REFS:
                if t != table:
                    continue
                # op.f: the name as 0002 created it (PostgreSQL truncates past 63 characters)
                batch.drop_constraint(op.f(f"fk_{t}_{column}_{parent}"), type_="foreignkey")
                batch.create_foreign_key(
                    f"fk_{t}_{column}_same_pbx", parent, ["pbx_id", column], ["pbx_id", "id"], ondelete=ondelete
                )


def downgrade() -> None:
    for table in reversed(ORDER):
        with op.batch_alter_table(table) as batch:
            for t, column, parent, ondelete in REFS:
                if t != table:
                    continue
                batch.drop_constraint(f"fk_{t}_{column}_same_pbx", type_="foreignkey")
                batch.create_foreign_key(op.f(f"fk_{t}_{column}_{parent}"), parent, [column], ["id"], ondelete=ondelete)
            if table in PARENTS:
                batch.drop_constraint(f"uq_{table}_pbx_row", type_="unique")
