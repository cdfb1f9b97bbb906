"""The fax feature: the engine's Stasis application and the fax service
(instances, send jobs, register, mails, archive), its handlers for res_fax
receptions, its dialplan, CLI and checks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kalliope_tel.features.base import (
    AsteriskLink,
    DialplanFragment,
    Feature,
    Job,
    PageLink,
    ServeContext,
    Visitor,
    drain_app,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kalliope_tel.asterisk.agi.server import AgiRouter
    from kalliope_tel.asterisk.ari.runtime import StasisApplication
    from kalliope_tel.checks import Check
    from kalliope_tel.container import Container
    from kalliope_tel.fax.service import FaxService
    from kalliope_tel.tenancy.models import Pbx

APP = "fax"


def _service(ctx: ServeContext) -> FaxService:
    from kalliope_tel.fax.service import FaxService

    if "fax-service" not in ctx.parts:
        ctx.parts["fax-service"] = FaxService(ctx.container, ctx.node)
    service: FaxService = ctx.parts["fax-service"]
    return service


def _stasis(ctx: ServeContext, link: AsteriskLink) -> dict[str, StasisApplication]:
    from kalliope_tel.ari_apps.fax import FaxApplication, ServiceInbound
    from kalliope_tel.fax.session import live_sessions, sessions_created

    settings = ctx.container.settings
    # Stasis(<ari_app>,fax,receive,<pbx>,<instance>) receives a fax for an
    # instance (the service admits it and takes the pages); without an
    # instance, pages land in <data_dir>/fax/rx.
    app = FaxApplication(
        link.runtime,
        spool_dir=settings.data_dir / "fax",
        ari_app=link.node_app,
        max_calls=settings.fax_max_calls,
        max_media_load=settings.fax_max_media_load,
        inbound=ServiceInbound(_service(ctx)),
    )
    ctx.status["fax_calls"] = lambda: sum(len(x.apps[APP].calls) for x in ctx.links if APP in x.apps)
    ctx.status["fax_live_sessions"] = live_sessions
    ctx.status["fax_sessions_created"] = sessions_created
    ctx.status["fax_refused"] = lambda: sum(x.apps[APP].refused for x in ctx.links if APP in x.apps)
    return {APP: app}


def _jobs(ctx: ServeContext) -> list[Job]:
    from kalliope_tel.ari_apps.fax import JobEngine
    from kalliope_tel.fax.runner import FaxSender, deliveries_loop

    service = _service(ctx)
    settings = ctx.container.settings
    tick = settings.fax_tick_seconds

    async def deliveries() -> None:
        await service.forget_own_slots()  # calls this node had before it (re)started are over
        await deliveries_loop(service, tick)

    jobs = [Job("fax-deliveries", deliveries)]
    for link in ctx.links:
        sender = FaxSender(service, JobEngine(link.apps[APP], settings.data_dir), asterisk=link.name, tick=tick)
        ctx.parts[f"fax-sender@{link.label}"] = sender
        connected = link.client.connected
        jobs.append(Job(f"fax-send@{link.label}", lambda s=sender, c=connected: s.run(c)))  # type: ignore[misc]
    return jobs


def _agi(router: AgiRouter, container: Container) -> None:
    from kalliope_tel.agi import fax

    fax.register(router, container)


def _dialplan(session: Session, pbx: Pbx, device_template: str) -> DialplanFragment:
    from kalliope_tel.dialplan.fax import dialplan_fragment

    return dialplan_fragment(session, pbx, device_template)


async def _drain(ctx: ServeContext, grace: float) -> None:
    await drain_app(ctx, APP, grace, lambda app: len(app.calls))


def _warm_up() -> None:
    """Load spandsp (and compile its binding if needed) before the first call,
    not during it: a first call used to stall the event loop for ~350 ms."""
    import kalliope_tel.ari_apps.fax  # noqa: F401
    from kalliope_tel.fax import spandsp

    spandsp.lib()


def _doctor(container: Container) -> list[Check]:
    import shutil

    from kalliope_tel.checks import Check
    from kalliope_tel.fax import spandsp

    try:
        spandsp.lib()
    except Exception as exc:
        return [Check("fax", False, f"spandsp cannot be loaded: {exc}", "apt-get install libspandsp-dev libtiff-dev")]
    if spandsp.MODE != "api" and shutil.which("cc"):
        return [
            Check(
                "fax",
                False,
                "spandsp binding in ABI (dlopen) mode although a compiler exists: about 35% slower",
                "check the compile error in the log, or remove ~/.cache/kalliope-tel and start again",
            )
        ]
    checks = [
        Check(
            "fax",
            True,
            f"spandsp binding in {spandsp.MODE} mode, cap {container.settings.fax_max_calls} calls"
            f" and {container.settings.fax_max_media_load:.0%} of a core",
        )
    ]
    return checks + _service_checks(container)


def _service_checks(container: Container) -> list[Check]:
    """Encrypted archival paths need a key; deliveries must not pile up or be given up."""
    from datetime import timedelta

    from sqlalchemy import func, select

    from kalliope_tel.checks import Check
    from kalliope_tel.db.base import utcnow
    from kalliope_tel.db.engine import transaction
    from kalliope_tel.fax import crypto
    from kalliope_tel.fax.models import ArchivePath, Encryption, FaxDelivery

    checks = []
    with transaction(container.sessions) as session:
        encrypted = session.scalar(
            select(func.count()).select_from(ArchivePath).where(ArchivePath.encryption == Encryption.BUILTIN)
        )
        late = session.scalar(
            select(func.count())
            .select_from(FaxDelivery)
            .where(FaxDelivery.done.is_(False), FaxDelivery.attempts > 0, FaxDelivery.next_try_at > utcnow())
        )
        given_up = session.scalar(
            select(func.count())
            .select_from(FaxDelivery)
            .where(
                FaxDelivery.done.is_(True),
                FaxDelivery.last_error != "",
                FaxDelivery.done_at > utcnow() - timedelta(days=1),
            )
        )
    if encrypted:
        try:
            crypto.load_key(container.settings.fax_archive_key.get_secret_value())
            checks.append(Check("fax archive", True, f"{encrypted} encrypted archival path(s), key set"))
        except crypto.CryptoError as exc:
            checks.append(Check("fax archive", False, str(exc), "kalliope-tel fax archive keygen FILE"))
    if late or given_up:
        checks.append(
            Check(
                "fax deliveries",
                False,
                f"{late} mail/archive deliveries waiting to retry, {given_up} given up in the last day",
                "check the mail server and archival paths; 'fax register' shows the faxes",
            )
        )
    else:
        checks.append(Check("fax deliveries", True, "no mail or archive delivery failing"))
    return checks


def _pages(_session: Session, visitor: Visitor) -> list[PageLink]:
    pages = [PageLink("fax", "nav.fax", 20)] if visitor.may("fax") else []
    if visitor.may("admin"):
        pages += [
            PageLink("admin/fax", "nav.fax_settings", 93, "group.fax", "about.fax_settings"),
            PageLink("admin/fax-instances", "nav.fax_instances", 93.2, "group.fax", "about.fax_instances"),
        ]
    return pages


FEATURE = Feature(
    name="fax",
    summary="Fax over G.711 and T.38 through spandsp",
    agi=_agi,
    stasis=_stasis,
    jobs=_jobs,
    drain=_drain,
    dialplan=_dialplan,
    cli=("fax", "kalliope_tel.cli.fax_cmd:app"),
    web="kalliope_tel.fax.web:router",
    pages=_pages,
    warm_up=_warm_up,
    doctor=_doctor,
    benches={"fax": "kalliope_tel.cli.bench_cmd:fax"},
    uses=("mail2fax",),  # instances link to Mail2Fax boxes when it runs
)
