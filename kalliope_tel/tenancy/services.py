"""Looking up PBXs. A single-site install has exactly one, the default."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

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


def per_pbx_row(session: Session, model: type[M], pbx: Pbx) -> M:
    """The PBX's single row of a per-PBX settings table, created with defaults."""
    found = session.scalars(select(model).where(model.pbx_id == pbx.id)).first()
    if found is None:
        found = model()
        found.pbx_id = pbx.id
        session.add(found)
        session.flush()
    return found


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
