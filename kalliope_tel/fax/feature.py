"""The fax feature: the engine's Stasis application, its cap and its checks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kalliope_tel.features.base import AsteriskLink, Feature, ServeContext, drain_app

if TYPE_CHECKING:
    from kalliope_tel.asterisk.ari.runtime import StasisApplication
    from kalliope_tel.checks import Check
    from kalliope_tel.container import Container

APP = "fax"


def _stasis(ctx: ServeContext, link: AsteriskLink) -> dict[str, StasisApplication]:
    from kalliope_tel.ari_apps.fax import FaxApplication
    from kalliope_tel.fax.session import live_sessions, sessions_created

    settings = ctx.container.settings
    # Stasis(<ari_app>,fax,receive) receives a fax on the call; pages land in
    # <data_dir>/fax/rx until the fax service (register, Mail2Fax) takes them.
    app = FaxApplication(
        link.runtime,
        spool_dir=settings.data_dir / "fax",
        ari_app=link.node_app,
        max_calls=settings.fax_max_calls,
    )
    ctx.status["fax_calls"] = lambda: sum(len(x.apps[APP].calls) for x in ctx.links if APP in x.apps)
    ctx.status["fax_live_sessions"] = live_sessions
    ctx.status["fax_sessions_created"] = sessions_created
    ctx.status["fax_refused"] = lambda: sum(x.apps[APP].refused for x in ctx.links if APP in x.apps)
    return {APP: app}


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
    return [Check("fax", True, f"spandsp binding in {spandsp.MODE} mode, cap {container.settings.fax_max_calls} calls")]


FEATURE = Feature(
    name="fax",
    summary="Fax over G.711 and T.38 through spandsp",
    stasis=_stasis,
    drain=_drain,
    warm_up=_warm_up,
    doctor=_doctor,
    benches={"fax": "kalliope_tel.cli.bench_cmd:fax"},
)
