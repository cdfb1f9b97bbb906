"""The hotel PMS link (FIAS): guests, wake-up calls and room equipment from
the PMS, call charges, wake-up answers and room status to it, exactly once
across node failures. Commands: ``kalliope-tel pms``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kalliope_tel.features.base import Feature, Job, ServeContext, lazy
from kalliope_tel.features.registry import partner_function, partner_runs

if TYPE_CHECKING:
    from kalliope_tel.container import Container


def lender(container: Container, partner: str, name: str) -> Callable[..., Any] | None:
    """What the hotel or wake-up lends, when it runs on this node."""
    return partner_function(FEATURE, partner, name) if partner_runs(container, FEATURE, partner) else None


def _jobs(ctx: ServeContext) -> list[Job]:
    from kalliope_tel.pms.service import jobs

    return jobs(ctx)


FEATURE = Feature(
    name="pms",
    summary="The hotel PMS link (FIAS): check-in/out, wake-up calls and room status from the PMS, postings to it",
    jobs=_jobs,
    doctor=lazy("kalliope_tel.pms.status:doctor_checks"),
    cli=("pms", "kalliope_tel.cli.pms_cmd:app"),
    benches={"pms": "kalliope_tel.pms.bench:bench_command"},
    uses=("hotel", "wakeup"),
    provides={"owe_posting": "kalliope_tel.pms.owed:owe_posting"},
)
