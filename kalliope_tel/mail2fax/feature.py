"""The Mail2Fax feature: serve reads the boxes (one node per box, by lease)
and turns requests into fax jobs; doctor says which boxes fail and which
instances are set up so that no request can pass. The boxes' commands are
``kalliope-tel fax boxes`` (the fax group); the outcome mails go out with
the fax service's deliveries."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kalliope_tel.features.base import Feature, Job, PageLink, ServeContext, Visitor

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kalliope_tel.checks import Check
    from kalliope_tel.container import Container


def _jobs(ctx: ServeContext) -> list[Job]:
    from kalliope_tel.fax import conversion
    from kalliope_tel.mail2fax.intake import Intake
    from kalliope_tel.mail2fax.watcher import BoxSupervisor

    settings = ctx.container.settings
    intake = Intake(ctx.container.sessions, settings.data_dir, ctx.node, conversion.for_settings(settings))
    supervisor = BoxSupervisor(intake)
    ctx.parts["mail2fax"] = supervisor
    ctx.status["mail2fax_boxes"] = lambda: sorted(w.box.name for w in supervisor.watchers.values())
    ctx.status["mail2fax_handled"] = lambda: sum(w.stats.handled for w in supervisor.watchers.values())
    return [Job("mail2fax-boxes", supervisor.run)]


def _doctor(container: Container) -> list[Check]:
    import shutil

    from kalliope_tel.checks import Check
    from kalliope_tel.db.engine import transaction
    from kalliope_tel.mail2fax.checks import box_problems

    with transaction(container.sessions) as session:
        problems, boxes = box_problems(session)
    if not boxes:
        return [Check("mail2fax", True, "no Mail2Fax box configured")]
    checks = []
    if shutil.which("gpg") is None:
        checks.append(Check("mail2fax", False, "gpg is missing: PGP requests cannot be read", "apt-get install gnupg"))
    for problem in problems:
        checks.append(Check("mail2fax", False, problem.text, problem.fix))
    if not problems:
        checks.append(Check("mail2fax", True, f"{boxes} box(es), none failing"))
    return checks


def _pages(_session: Session, visitor: Visitor) -> list[PageLink]:
    if not visitor.may("admin"):
        return []
    return [PageLink("admin/mail2fax", "nav.mail2fax_boxes", 93.4, "group.fax", "about.mail2fax_boxes")]


FEATURE = Feature(
    name="mail2fax",
    summary="Fax requests by e-mail: IMAP (IDLE) and POP3 boxes",
    jobs=_jobs,
    doctor=_doctor,
    benches={"mail2fax": "kalliope_tel.mail2fax.bench:bench_command"},
    web="kalliope_tel.mail2fax.web:router",
    pages=_pages,
    user_page={"pgp": True},  # "PGP signature" authentication: the users page sets each user's key
    provides={"box_names": "kalliope_tel.mail2fax.boxes:box_names"},
)
