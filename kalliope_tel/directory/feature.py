"""The directory: what extensions and rooms publish, kept in step in LDAP
(the embedded slapd or an existing directory) by serve, and the phones'
XML phonebooks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kalliope_tel.features.base import Feature, Job, ServeContext
from kalliope_tel.features.registry import partner_function, partner_runs

if TYPE_CHECKING:
    from kalliope_tel.checks import Check
    from kalliope_tel.container import Container
    from kalliope_tel.directory.entries import RoomsOf


def rooms_lender(container: Container) -> RoomsOf | None:
    """The hotel's rooms rule when the hotel runs on this node."""
    if not partner_runs(container, FEATURE, "hotel"):
        return None
    lender: RoomsOf = partner_function(FEATURE, "hotel", "directory_rooms")
    return lender


def _tokens_lender(container: Container) -> Any:
    return partner_function(FEATURE, "hotel", "directory_tokens") if partner_runs(container, FEATURE, "hotel") else None


def _jobs(ctx: ServeContext) -> list[Job]:
    from kalliope_tel.directory.sync import DirectorySync

    sync = DirectorySync(ctx.container, rooms_lender(ctx.container), _tokens_lender(ctx.container))
    ctx.parts["directory"] = sync
    ctx.status["directory"] = lambda: {**sync.figures.written, "rounds": sync.figures.rounds,
                                       "last_error": sync.figures.last_error}  # fmt: skip
    return [Job("directory-sync", sync.run)]


def _doctor(container: Container) -> list[Check]:
    from kalliope_tel.directory.status import doctor_check

    return [doctor_check(container)]


FEATURE = Feature(
    name="directory",
    summary="The directory phones search: extensions and rooms in LDAP (slapd) and XML phonebooks",
    jobs=_jobs,
    doctor=_doctor,
    cli=("directory", "kalliope_tel.cli.directory_cmd:app"),
    web="kalliope_tel.directory.web:router",
    benches={"directory": "kalliope_tel.directory.bench:bench_command"},
    uses=("hotel",),  # rooms are published by the hotel's rules
)
