"""A received fax once per call (unique PBX and call id): two nodes on one
data directory could both register a reception from its note. Duplicates
already in the register are kept, their call id marked as such.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 17:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "UPDATE fax_received SET call_id = substr(call_id, 1, 80) || '#dup' || id "
        "WHERE id NOT IN (SELECT min(id) FROM fax_received GROUP BY pbx_id, call_id)"
    )
    with op.batch_alter_table("fax_received", schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f("uq_fax_received_pbx_id"), ["pbx_id", "call_id"])


def downgrade() -> None:
    with op.batch_alter_table("fax_received", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_fax_received_pbx_id"), type_="unique")
