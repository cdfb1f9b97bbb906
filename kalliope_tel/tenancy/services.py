"""Looking up PBXs. A single-site install has exactly one, the default."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session, sessionmaker

from kalliope_tel.asterisk import confgate
from kalliope_tel.db.engine import transaction
from kalliope_tel.db.prepared import Prepared
from kalliope_tel.tenancy import companies
from kalliope_tel.tenancy.exceptions import AsteriskServerNotFound, InvalidPbx, PbxNotFound
from kalliope_tel.tenancy.models import DEFAULT_PBX_SLUG, AsteriskServer, Company, Pbx, PbxOwned


def get_pbx(session: Session, slug: str | None = None) -> Pbx:
    """The PBX named ``slug``, or the default one."""
    query = select(Pbx).where(Pbx.is_default) if slug is None else select(Pbx).where(Pbx.slug == slug)
    pbx = session.scalars(query).first()
    if pbx is None:
        raise PbxNotFound(slug or DEFAULT_PBX_SLUG)
    return pbx


M = TypeVar("M", bound=PbxOwned)
T = TypeVar("T")


def per_pbx_row(session: Session, model: type[M], pbx: Pbx) -> M:
    """The PBX's single row of a per-PBX settings table, created with defaults."""
    found = session.scalars(select(model).where(model.pbx_id == pbx.id)).first()
    if found is None:
        found = model()
        found.pbx_id = pbx.id
        session.add(found)
        session.flush()
    return found


def for_each_pbx(
    sessions: sessionmaker[Session],
    work: Callable[[Session, Pbx], T],
    *,
    asterisk: str | None = None,
    read_only: bool = False,
    serving_only: bool = False,
) -> dict[str, T]:
    """Run ``work`` for every PBX, each in its own transaction (one tenant's
    failure or lock never holds up another's); results by PBX slug.
    ``serving_only``: not the PBXs of a suspended company.

    ``asterisk`` limits it to the PBXs bound to that Asterisk server ("" for
    the default one), so a node only acts for PBXs on the Asterisk it drives.
    ``read_only``: see ``db.engine.transaction``.
    """
    with sessions() as session:
        serving = set(session.scalars(companies.serving_pbx_ids())) if serving_only else None
        ids = [
            p.id
            for p in list_pbxs(session)
            if (asterisk is None or p.asterisk_name == asterisk) and (serving is None or p.id in serving)
        ]
    results: dict[str, T] = {}
    for pbx_id in ids:
        with transaction(sessions, read_only=read_only) as session:
            pbx = session.get(Pbx, pbx_id)
            if pbx is not None:  # deleted meanwhile
                results[pbx.slug] = work(session, pbx)
    return results


def list_pbxs(session: Session) -> list[Pbx]:
    return list(session.scalars(select(Pbx).order_by(Pbx.id)))


# Built once: building a statement per call cost more than running it.
# Run on the driver's connection: this read is the whole database work of
# the pbx-name FastAGI handler (see kalliope_tel.db.prepared).
_DEFAULT_NAME = Prepared(select(Pbx.name).where(Pbx.is_default))
_NAME_BY_SLUG = Prepared(select(Pbx.name).where(Pbx.slug == bindparam("slug")))


def pbx_display_name(conn: Connection, slug: str | None = None) -> str:
    """The PBX's name with one Core query, for per-call paths (``HotReader``)."""
    if slug is None:
        name: str | None = _DEFAULT_NAME.scalar(conn)
    else:
        name = _NAME_BY_SLUG.scalar(conn, {"slug": slug})
    if name is None:
        raise PbxNotFound(slug or DEFAULT_PBX_SLUG)
    return name


# ------------------------------------------------------------------ PBXs
def _check_timezone(tz: str) -> str:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidPbx(f"time zone {tz!r} is unknown (e.g. Europe/Rome)") from None
    return tz


def create_pbx(
    session: Session,
    slug: str,
    name: str,
    timezone: str = "UTC",
    asterisk: str | None = None,
    company: Company | None = None,
) -> Pbx:
    """A new PBX (tenant) of ``company`` (the installation's partner when not
    given). Its slug names everything it has in Asterisk."""
    try:
        confgate.slug(slug)
    except confgate.UnsafeValue as exc:
        raise InvalidPbx(exc.code, **exc.params) from None
    if session.scalars(select(Pbx).where(Pbx.slug == slug)).first():
        raise InvalidPbx(f"PBX {slug!r} exists already")
    owner = company or companies.installation_partner(session)
    pbx = Pbx(
        slug=slug, name=name.strip() or slug, timezone=_check_timezone(timezone), is_default=False, company_id=owner.id
    )
    if asterisk:
        pbx.asterisk_server_id = get_asterisk_server(session, asterisk).id
    session.add(pbx)
    session.flush()
    return pbx


def update_pbx(
    session: Session, slug: str, *, name: str | None = None, timezone: str | None = None, asterisk: str | None = None
) -> Pbx:
    """Change a PBX; ``asterisk=""`` binds it back to the default Asterisk."""
    pbx = get_pbx(session, slug)
    if name is not None:
        pbx.name = name.strip() or pbx.slug
    if timezone is not None:
        pbx.timezone = _check_timezone(timezone)
    if asterisk is not None:
        pbx.asterisk_server_id = get_asterisk_server(session, asterisk).id if asterisk else None
    session.flush()
    return pbx


def remove_pbx(session: Session, slug: str) -> None:
    """Delete a PBX and, through the foreign keys' cascades, every row it owns."""
    pbx = get_pbx(session, slug)
    if pbx.is_default:
        raise InvalidPbx("the default PBX cannot be removed")
    session.delete(pbx)
    session.flush()


# ------------------------------------------------------------------ Asterisk servers
@dataclass(frozen=True)
class ServerValues:
    lab_name: str = ""
    ari_url: str = ""
    ari_username: str = ""
    ari_password: str = ""
    ami_url: str = ""
    ami_username: str = ""
    ami_password: str = ""
    config_dir: str = ""
    device_template: str = ""


def add_asterisk_server(session: Session, name: str, values: ServerValues) -> AsteriskServer:
    try:
        confgate.slug(name, "what.server_name")
    except confgate.UnsafeValue as exc:
        raise InvalidPbx(exc.code, **exc.params) from None
    if session.scalars(select(AsteriskServer).where(AsteriskServer.name == name)).first():
        raise InvalidPbx(f"Asterisk server {name!r} exists already")
    if bool(values.lab_name) == bool(values.ari_url):
        raise InvalidPbx("give either a lab name or ARI and AMI addresses")
    if values.ari_url:
        if urlsplit(values.ari_url).scheme not in ("http", "https") or not values.ami_url:
            raise InvalidPbx("ARI needs an http(s):// URL, and AMI a tcp://HOST:PORT address too")
        ami = urlsplit(values.ami_url)
        if ami.scheme not in ("tcp", "tls") or not ami.hostname or not ami.port:
            raise InvalidPbx("AMI address must look like tcp://HOST:PORT")
    server = AsteriskServer(name=name, **vars(values))
    session.add(server)
    session.flush()
    return server


def get_asterisk_server(session: Session, name: str) -> AsteriskServer:
    found = session.scalars(select(AsteriskServer).where(AsteriskServer.name == name)).first()
    if found is None:
        raise AsteriskServerNotFound(name)
    return found


def list_asterisk_servers(session: Session) -> list[AsteriskServer]:
    return list(session.scalars(select(AsteriskServer).order_by(AsteriskServer.name)))


def remove_asterisk_server(session: Session, name: str) -> None:
    server = get_asterisk_server(session, name)
    users = [p.slug for p in list_pbxs(session) if p.asterisk_server_id == server.id]
    if users:
        raise InvalidPbx(f"Asterisk server {name!r} still serves PBX(s) {', '.join(users)}")
    session.delete(server)
    session.flush()
