"""The billing feature: call records from Asterisk's CDRs (AMI as calls end,
the CDR file to reconcile), priced with cost profiles per outgoing line;
the hotel's cost since check-in and the calls report per stay; the rating
benchmark. Commands: ``kalliope-tel billing``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kalliope_tel.features.base import Feature, Job, PageLink, ServeContext, Visitor

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kalliope_tel.checks import Check
    from kalliope_tel.container import Container


def _jobs(ctx: ServeContext) -> list[Job]:
    from kalliope_tel.billing.service import jobs

    return jobs(ctx)


def _doctor(container: Container) -> list[Check]:
    import os
    from pathlib import Path

    from kalliope_tel.billing.reports import unpriced_count
    from kalliope_tel.checks import Check
    from kalliope_tel.db.engine import transaction
    from kalliope_tel.errors import KalliopeError

    checks = []
    try:
        cdr_file = container.endpoints.cdr_file
    except KalliopeError as exc:
        cdr_file = None
        checks.append(Check("billing", False, f"no Asterisk to read CDRs from: {exc}"))
    if cdr_file is None:
        checks.append(
            Check(
                "billing",
                False,
                "no CDR file to reconcile against: calls made while serve is down are not recorded",
                "set cdr_file (KALLIOPE_CDR_FILE) to Asterisk's cdr-custom/kalliope-cdr.json",
            )
        )
    else:
        path = Path(cdr_file)
        folder = path.parent
        if path.exists() and not os.access(path, os.R_OK):
            checks.append(Check("billing", False, f"CDR file {path} is not readable", "give serve's user read access"))
        elif not folder.is_dir():
            checks.append(
                Check(
                    "billing",
                    False,
                    f"{folder} does not exist: is asterisk-conf/cdr_custom.conf installed?",
                    "copy asterisk-conf/cdr_custom.conf and cdr.conf to /etc/asterisk, then 'module reload cdr_custom'",
                )
            )
        else:
            checks.append(Check("billing", True, f"CDR file {path}"))
    with transaction(container.sessions) as session:
        unpriced = unpriced_count(session)
    if unpriced:
        checks.append(
            Check(
                "billing",
                False,
                f"{unpriced} outbound call(s) not priced (no profile or no rule matched)",
                "kalliope-tel billing calls --unpriced",
            )
        )
    return checks


def _pages(_session: Session, visitor: Visitor) -> list[PageLink]:
    if not visitor.may("admin"):
        return []
    return [PageLink("admin/billing", "nav.billing", 96, "group.billing", "about.billing")]


FEATURE = Feature(
    name="billing",
    summary="Call records from CDRs, priced by cost profiles per outgoing line",
    jobs=_jobs,
    doctor=_doctor,
    cli=("billing", "kalliope_tel.cli.billing_cmd:app"),
    benches={"billing": "kalliope_tel.billing.bench:bench_command"},
    web="kalliope_tel.billing.web:router",
    pages=_pages,
    provides={"occupied_costs": "kalliope_tel.billing.reports:occupied_costs"},
    uses=("pms",),  # a priced call from an occupied room owes the PMS a posting
)
