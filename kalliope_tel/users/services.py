"""Users of a PBX: add, list, find, remove.

Callers own the transaction. E-mail addresses are unique across every PBX and
compared exactly (KalliopePBX's rule: Mail2Fax finds a sender by address).
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kalliope_tel.errors import KalliopeError
from kalliope_tel.mail.addresses import check_address
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.users.models import User


class UserError(KalliopeError):
    pass


def _name(value: str) -> str:
    from kalliope_tel.asterisk import confgate

    try:
        return confgate.identifier(value, "user name")
    except confgate.UnsafeValue as exc:
        raise UserError(str(exc)) from None


def add_user(session: Session, pbx: Pbx, name: str, email: str, full_name: str = "") -> User:
    name = _name(name)
    try:
        email = check_address(email)
    except ValueError as exc:
        raise UserError(f"e-mail: {exc}") from None
    if len(full_name) > 120 or any(ord(c) < 32 for c in full_name):
        raise UserError("full name: at most 120 printable characters")
    if session.scalar(select(User.id).where(User.pbx_id == pbx.id, User.name == name)) is not None:
        raise UserError(f"user {name!r} exists already in PBX {pbx.slug!r}")
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        # Not which PBX: an admin of one tenant learns nothing about another.
        raise UserError(f"e-mail {email} belongs to another user already (addresses are unique across all PBXs)")
    user = User(pbx_id=pbx.id, name=name, email=email, full_name=full_name.strip())
    session.add(user)
    session.flush()
    return user


def list_users(session: Session, pbx: Pbx) -> list[User]:
    return list(session.scalars(select(User).where(User.pbx_id == pbx.id).order_by(User.name)))


def get_user(session: Session, pbx: Pbx, name: str) -> User:
    user = session.scalars(select(User).where(User.pbx_id == pbx.id, User.name == name)).first()
    if user is None:
        raise UserError(f"no user {name!r} in PBX {pbx.slug!r}")
    return user


def find_by_email(session: Session, email: str) -> User | None:
    """The user with exactly this address, in any PBX (Mail2Fax)."""
    return session.scalars(select(User).where(User.email == email)).first()


def remove_user(session: Session, pbx: Pbx, name: str) -> None:
    from kalliope_tel.fax.models import FaxJob

    user = get_user(session, pbx, name)
    # Their faxes stay in the register, without a sender.
    session.execute(update(FaxJob).where(FaxJob.pbx_id == pbx.id, FaxJob.user_id == user.id).values(user_id=None))
    session.delete(user)
    session.flush()
