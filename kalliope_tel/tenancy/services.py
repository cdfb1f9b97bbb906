"""Looking up PBXs. A single-site install has exactly one, the default."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session, sessionmaker

from kalliope_tel.tenancy.exceptions import PbxNotFound
from kalliope_tel.tenancy.models import DEFAULT_PBX_SLUG, Pbx, PbxOwned


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


def for_each_pbx(sessions: sessionmaker[Session], work: Callable[[Session, Pbx], T]) -> dict[str, T]:
    """Run ``work`` for every PBX, each in its own transaction (one tenant's
    failure or lock never holds up another's); results by PBX slug."""
    with sessions() as session:
        ids = [p.id for p in list_pbxs(session)]
    results: dict[str, T] = {}
    for pbx_id in ids:
        with sessions() as session, session.begin():
            pbx = session.get(Pbx, pbx_id)
            if pbx is not None:  # deleted meanwhile
                results[pbx.slug] = work(session, pbx)
    return results


def list_pbxs(session: Session) -> list[Pbx]:
    return list(session.scalars(select(Pbx).order_by(Pbx.id)))


_DEFAULT_NAME = select(Pbx.name).where(Pbx.is_default)


def pbx_display_name(conn: Connection, slug: str | None = None) -> str:
    """The PBX's name with one Core query, for per-call paths (``HotReader``)."""
    query = _DEFAULT_NAME if slug is None else select(Pbx.name).where(Pbx.slug == slug)
    name = conn.execute(query).scalar_one_or_none()
    if name is None:
        raise PbxNotFound(slug or DEFAULT_PBX_SLUG)
    return name
