"""The hotel the billing tests price calls for: room 101 (template std,
outbound classes to the lab's SIP trunk context) and profile 'lab' for the
line 'lab-trunk': prefix 06 at 0.05 + 0.12/min in 30/6 increments, 112 free."""

from __future__ import annotations

from sqlalchemy.orm import Session

from kalliope_tel.billing import profiles
from kalliope_tel.billing.profiles import RuleInput
from kalliope_tel.hotel import services
from kalliope_tel.tenancy.services import get_pbx

LAB_RULES = [RuleInput("prefix", "06", "0.05", "0.12", 30, 6), RuleInput("exact", "112", "0", "0", 1, 1)]


def seed_billing_hotel(session: Session, *, accounts: int = 0, extra_rules: list[RuleInput] | None = None) -> None:
    pbx = get_pbx(session)
    services.ensure_default_classes(session, pbx, "kt-lab-pstn")
    services.create_template(session, pbx, "std")
    services.create_room(session, pbx, "101", "Room 101", "std", new_accounts=accounts)
    lab = profiles.create_profile(session, pbx, "lab", line="lab-trunk")
    profiles.add_rules(session, pbx, lab, [*LAB_RULES, *(extra_rules or [])])
