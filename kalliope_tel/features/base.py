"""What a feature declares, and what ``serve`` hands it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kalliope_tel.asterisk.agi.server import AgiRouter
    from kalliope_tel.asterisk.ami.client import AmiClient
    from kalliope_tel.asterisk.ari.client import AriClient
    from kalliope_tel.asterisk.ari.runtime import AriRuntime, StasisApplication
    from kalliope_tel.asterisk.endpoints import AsteriskEndpoints
    from kalliope_tel.checks import Check
    from kalliope_tel.container import Container
    from kalliope_tel.tenancy.models import Pbx


@dataclass
class AsteriskLink:
    """One Asterisk this node drives: the default one, or a server PBXs are bound to.

    ``name`` is "" for the default Asterisk. Calls the dialplan sends to
    ``Stasis(<ari_app>,...)`` arrive on the shared app; calls this node
    originates use ``node_app``, whose events reach this node only.
    """

    name: str
    endpoints: AsteriskEndpoints
    client: AriClient
    runtime: AriRuntime
    node_app: str
    apps: dict[str, Any] = field(default_factory=dict)  # Stasis applications by name
    ami: AmiClient | None = None  # set by serve before the jobs start (events: ami.on)

    @property
    def label(self) -> str:
        return self.name or "default"


@dataclass
class ServeContext:
    container: Container
    node: str
    links: list[AsteriskLink]
    # Figures a feature adds to the node's status (live fax sessions, calls...).
    status: dict[str, Callable[[], Any]] = field(default_factory=dict)
    # Objects a feature's jobs run on, by name (for status and tests).
    parts: dict[str, Any] = field(default_factory=dict)


async def drain_app(ctx: ServeContext, app_name: str, grace: float, count: Callable[[Any], int]) -> None:
    """Wait up to ``grace`` for the Stasis app ``app_name`` to go idle on every
    link; log how many calls were still running (``count(app)``) where not."""
    import structlog

    for link in ctx.links:
        app = link.apps[app_name]
        if not await app.wait_idle(grace):
            structlog.get_logger(__name__).warning(f"serve.unfinished_{app_name}_calls", count=count(app))


@dataclass(frozen=True)
class Job:
    """A background coroutine ``serve`` supervises: restarted when it ends or raises."""

    name: str
    run: Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class DialplanFragment:
    """A feature's part of one PBX's generated dialplan.

    ``includes`` are contexts (named by the feature, inside the PBX's
    namespace) that the PBX's internal context includes, in feature order;
    ``lines`` are the contexts themselves.
    """

    includes: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    # Extension numbers whose calls these contexts handle (the hotel's
    # rooms): the core renders only their hints, not their calls.
    answers: frozenset[str] = frozenset()
    # Contexts searched after the PBX's own extensions (another PBX's
    # numbers in a group): what the PBX has itself always comes first.
    late_includes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PageLink:
    """A page of a feature in the navigation: ``/pbx/<slug>/<path>``,
    labelled by a catalogue key. A user's home is the page with the lowest
    ``order`` among those they may open."""

    path: str
    label: str
    order: float
    # Administration pages (``admin/...``) are listed on the PBX's
    # administration page under ``group`` (a catalogue key), with ``about``.
    group: str = ""
    about: str = ""

    @property
    def administration(self) -> bool:
        return self.path.startswith("admin/")


@dataclass(frozen=True)
class Visitor:
    """Who asks which pages they may open (the web's logged-in user, without the web)."""

    pbx_id: int
    user_id: int
    roles: frozenset[str]

    def may(self, *roles: str) -> bool:
        return "admin" in self.roles or any(r in self.roles for r in roles)


@dataclass(frozen=True)
class Feature:
    name: str
    summary: str
    # FastAGI handlers, registered on the one router.
    agi: Callable[[AgiRouter, Container], None] | None = None
    # Stasis applications for one Asterisk link: {first Stasis argument: app}.
    stasis: Callable[[ServeContext, AsteriskLink], dict[str, StasisApplication]] | None = None
    # Background jobs, once the links exist.
    jobs: Callable[[ServeContext], list[Job]] | None = None
    # At shutdown, after jobs stop: let calls in progress finish (grace seconds).
    drain: Callable[[ServeContext, float], Awaitable[None]] | None = None
    # Generated configuration for one PBX (device template for the room phones).
    dialplan: Callable[[Session, Pbx, str], DialplanFragment] | None = None
    pjsip: Callable[[Session, Pbx], list[str]] | None = None
    # Files several PBXs need alike (a carrier trunk, a group's contexts):
    # every PBX that uses one renders it with the same text, suspended or
    # not, so whichever PBX's change comes first writes it. {name: text}.
    shared_files: Callable[[Session, Pbx], dict[str, str]] | None = None
    # The names of every such file that should exist now; any other
    # generated file is removed (a trunk or a group deleted).
    shared_file_names: Callable[[Session], set[str]] | None = None
    # Checks for 'doctor'.
    doctor: Callable[[Container], list[Check]] | None = None
    # Work done at start-up rather than in the first call (imports, compiled bindings).
    warm_up: Callable[[], None] | None = None
    # CLI group: (name, "module:attribute" of a typer.Typer), imported by the CLI.
    cli: tuple[str, str] | None = None
    # Web: "module:attribute" of a function (Container) -> fastapi.APIRouter,
    # mounted by the web feature (API routes under /api/v1, and pages).
    web: str | None = None
    # The feature's pages a user may open (the navigation, and their home page).
    pages: Callable[[Session, Visitor], list[PageLink]] | None = None
    # What the core's users page offers for this feature: flags merged into
    # the page's configuration (Mail2Fax: {"pgp": True}, the user's PGP key).
    user_page: dict[str, Any] = field(default_factory=dict)
    # Benchmarks: {command name: "module:attribute" of a typer command function}.
    benches: dict[str, str] = field(default_factory=dict)
    # Features this one works with when they run too, never requires (the
    # hotel's stay history offers billing's call report): asked through
    # ``features.registry.partner_runs``, which refuses an undeclared name.
    uses: tuple[str, ...] = ()
    # What this feature lends to the features that declare it in their
    # ``uses``: {name: "module:function"}, asked through
    # ``features.registry.partner_function``. The user never imports the
    # lender's modules, so the two packages never import each other (the
    # hotel's check-out cancels wake-up alarms through "cancel_room_alarms").
    provides: dict[str, str] = field(default_factory=dict)


def lazy(target: str) -> Callable[..., Any]:
    """A feature's hook named "module:function", imported at its first
    call: declaring a feature imports nothing heavy (a fast CLI start)."""
    module, _, name = target.partition(":")

    def call(*args: Any, **kwargs: Any) -> Any:
        import importlib

        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    return call
