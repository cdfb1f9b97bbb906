"""The PMS links as the store sees them: settings, who holds each link,
its state, the last record, the messages owed; and doctor's checks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from kalliope_tel.db.base import utcnow
from kalliope_tel.db.engine import transaction
from kalliope_tel.pms import owed
from kalliope_tel.pms.models import PmsLink
from kalliope_tel.tenancy.models import Pbx

if TYPE_CHECKING:
    from kalliope_tel.checks import Check
    from kalliope_tel.container import Container


def rows(container: Container) -> list[dict[str, Any]]:
    now = utcnow()
    out = []
    with transaction(container.sessions, read_only=True) as s:
        for link, slug in s.execute(select(PmsLink, Pbx.slug).join(Pbx, Pbx.id == PmsLink.pbx_id).order_by(Pbx.slug)):
            held = link.lease_until is not None and link.lease_until > now
            out.append({
                "pbx": slug, "enabled": link.enabled, "mode": link.mode.value, "peer": f"{link.host}:{link.port}",
                "state": link.state if held else "down", "holder": link.claimed_by if held else None,
                "last_record": link.last_record,
                "last_record_at": link.last_record_at.isoformat() if link.last_record_at else None,
                "linked_at": link.linked_at.isoformat() if link.linked_at else None,
                "resynced_at": link.resynced_at.isoformat() if link.resynced_at else None,
                "last_error": link.last_error, "refused_records": link.refused_records,
                "messages": owed.counts(s, link.pbx_id),
            })  # fmt: skip
    return out


def doctor_checks(container: Container) -> list[Check]:
    from kalliope_tel.checks import Check

    found = [row for row in rows(container) if row["enabled"]]
    if not found:
        return [Check("pms", True, "no PMS link set up ('kalliope-tel pms --pbx SLUG settings' sets one)")]
    checks = []
    for row in found:
        owed_now = row["messages"]["owed"] + row["messages"]["sent"]
        about = (f"{row['pbx']}: {row['state']} with {row['peer']}, last record {row['last_record'] or '-'}, "
                 f"{owed_now} message(s) owed, {row['messages']['refused']} refused")  # fmt: skip
        if row["state"] not in ("linked", "resyncing"):
            checks.append(Check("pms", False, f"{about}; {row['last_error'] or 'no node holds the link'}",
                                "is serve running? is the PMS's interface listening?"))  # fmt: skip
        elif row["messages"]["refused"]:
            checks.append(Check("pms", False, about, f"kalliope-tel pms --pbx {row['pbx']} postings --refused"))
        else:
            checks.append(Check("pms", True, about))
    return checks
