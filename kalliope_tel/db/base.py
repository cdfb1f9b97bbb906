"""The declarative base every model derives from.

A fixed naming convention makes constraint names identical on SQLite and
PostgreSQL, which alembic needs to compare and alter them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import DateTime, Enum, MetaData, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on both databases.

    SQLite drops the offset on the way back; this puts UTC back so code never
    compares naive and aware datetimes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def str_enum(cls: type[enum.StrEnum], name: str) -> Enum:
    """An enum column stored as plain strings (no native ENUM type), so adding
    a value never needs an ALTER TYPE on PostgreSQL."""
    return Enum(cls, name=name, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])


class ReachesAsterisk:
    """Mixin: the generated Asterisk configuration is made from these rows;
    a change of one bumps its PBX's ``config_serial``
    (``kalliope_tel.asterisk.config_serial``) and ``serve`` applies it."""

    def config_pbx_id(self, session: Session) -> int | None:
        """The PBX whose configuration this row is part of (rows without a
        ``pbx_id`` of their own look it up through their parent)."""
        value = getattr(self, "pbx_id", None)
        return value if isinstance(value, int) else None

    def config_pbx_ids(self, session: Session) -> Iterable[int]:
        """Every PBX whose configuration this row is part of: its own, or,
        for a row several PBXs use (a carrier trunk), all of theirs."""
        pbx_id = self.config_pbx_id(session)
        return () if pbx_id is None else (pbx_id,)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
