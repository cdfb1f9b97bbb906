"""Carriers, SIP trunks and numbers.

A **carrier** (Operatore) is one of the installation's list, with the
defaults every trunk to it starts from: the addresses it offers
(endpoints), transport, codecs and whether it wants a registration. A
**trunk** belongs to a company (a partner or a customer) and serves that
company's PBXs (a partner's trunk also serves its customers'); its password
is a secret, masked in every output and given on standard input. A
**number** (Numerazione) is a PBX's: a single number or a block of 10, 100
or 1,000 whose last 1, 2 or 3 digits name the extension; no two numbers or
blocks of the installation overlap (``trunks.numbers``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from kalliope_tel.db.base import Base, ReachesAsterisk, UTCDateTime, str_enum, utcnow
from kalliope_tel.tenancy.models import Company, Pbx, PbxOwned


class Transport(enum.StrEnum):
    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"


def scope_pbx_ids(session: Session, company_id: int) -> list[int]:
    """The PBXs a trunk of this company serves: the company's, and its
    customers' when it is a partner."""
    customers = select(Company.id).where(Company.parent_id == company_id)
    query = select(Pbx.id).where(or_(Pbx.company_id == company_id, Pbx.company_id.in_(customers)))
    return list(session.scalars(query.order_by(Pbx.id)))


def trunks_serving(session: Session, pbx: Pbx) -> list[SipTrunk]:
    """The trunks a PBX may use: its company's and its company's partner's."""
    parent = select(Company.parent_id).where(Company.id == pbx.company_id).scalar_subquery()
    query = select(SipTrunk).where(or_(SipTrunk.company_id == pbx.company_id, SipTrunk.company_id == parent))
    return list(session.scalars(query.order_by(SipTrunk.id)))


class Carrier(ReachesAsterisk, Base):
    __tablename__ = "carrier"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    # "host" or "host:port", the first one the default of a new trunk.
    endpoints: Mapped[list[str]] = mapped_column(JSON, default=list)
    transport: Mapped[Transport] = mapped_column(str_enum(Transport, "sip_transport"), default=Transport.UDP)
    codecs: Mapped[str] = mapped_column(String(60), default="alaw,ulaw")
    registers: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def config_pbx_ids(self, session: Session) -> Iterable[int]:
        owners = session.scalars(select(SipTrunk.company_id).where(SipTrunk.carrier_id == self.id).distinct())
        return {pbx_id for company_id in owners for pbx_id in scope_pbx_ids(session, company_id)}


class SipTrunk(ReachesAsterisk, Base):
    __tablename__ = "sip_trunk"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"), index=True)
    description: Mapped[str] = mapped_column(String(200))
    carrier_id: Mapped[int] = mapped_column(ForeignKey("carrier.id", ondelete="RESTRICT"), index=True)
    endpoint: Mapped[str] = mapped_column(String(100))  # one of the carrier's endpoints
    auth_required: Mapped[bool] = mapped_column(Boolean, default=True)
    username: Mapped[str] = mapped_column(String(64), default="")
    password: Mapped[str] = mapped_column(String(128), default="")  # a secret: never printed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    carrier: Mapped[Carrier] = relationship(lazy="joined")

    def config_pbx_ids(self, session: Session) -> Iterable[int]:
        return scope_pbx_ids(session, self.company_id)


class PhoneNumber(PbxOwned, ReachesAsterisk, Base):
    """A number or block of a PBX: ``number`` as written (the block's first
    number), ``digits`` 0 for a single number, 1 to 3 for a block."""

    __tablename__ = "phone_number"
    __table_args__ = (UniqueConstraint("number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # A trunk with numbers cannot be deleted: the list of them is the answer.
    trunk_id: Mapped[int] = mapped_column(ForeignKey("sip_trunk.id", ondelete="RESTRICT"), index=True)
    number: Mapped[str] = mapped_column(String(20))
    digits: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    trunk: Mapped[SipTrunk] = relationship(lazy="joined")

    @property
    def prefix(self) -> str:
        """The digits every number of the block starts with."""
        return self.number[: len(self.number) - self.digits]
