"""Users of a PBX: add, list, find, remove.

Callers own the transaction. E-mail addresses are unique across every PBX and
compared exactly (KalliopePBX's rule: Mail2Fax finds a sender by address).
"""

from __future__ import annotations

import contextlib
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kalliope_tel.errors import KalliopeError
from kalliope_tel.mail.addresses import check_address
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.users.models import Role, User, UserRole


class UserError(KalliopeError):
    pass


def _name(value: str) -> str:
    from kalliope_tel.asterisk import confgate

    try:
        return confgate.identifier(value, "what.user_name")
    except confgate.UnsafeValue as exc:
        raise UserError(exc.code, **exc.params, field="name") from None


def _email(value: str) -> str:
    try:
        return check_address(value)
    except ValueError:
        raise UserError("user.bad_email", email=repr(value[:254])) from None


def _full_name(value: str) -> str:
    if len(value) > 120 or any(ord(c) < 32 for c in value):
        raise UserError("user.bad_full_name", limit=120)
    return value.strip()


def add_user(session: Session, pbx: Pbx, name: str, email: str, full_name: str = "") -> User:
    name = _name(name)
    email = _email(email)
    full_name = _full_name(full_name)
    if session.scalar(select(User.id).where(User.pbx_id == pbx.id, User.name == name)) is not None:
        raise UserError("user.exists", name=repr(name), pbx=repr(pbx.slug))
    _email_free(session, email, None)
    user = User(pbx_id=pbx.id, name=name, email=email, full_name=full_name)
    session.add(user)
    session.flush()
    return user


def _email_free(session: Session, email: str, besides: int | None) -> None:
    taken = session.scalar(select(User.id).where(User.email == email))
    if taken is not None and taken != besides:
        # Not which PBX: an admin of one tenant learns nothing about another.
        raise UserError("user.email_taken", email=email)


def update_user(
    session: Session, pbx: Pbx, name: str, *, email: str | None = None, full_name: str | None = None
) -> User:
    """Change the user's e-mail address (their login) or full name."""
    user = get_user(session, pbx, name)
    if email is not None:
        email = _email(email)
        _email_free(session, email, user.id)
        user.email = email
    if full_name is not None:
        user.full_name = _full_name(full_name)
    session.flush()
    return user


def as_dict(user: User) -> dict[str, Any]:
    """A user as the CLI's JSON and the web's administration show them."""
    return {
        "name": user.name,
        "email": user.email,
        "full_name": user.full_name,
        "roles": sorted(user.role_set),
        "has_password": bool(user.password_hash),
        "pgp": bool(user.pgp_fingerprint),
        "created_at": user.created_at.isoformat(),
    }


def list_users(session: Session, pbx: Pbx) -> list[User]:
    return list(session.scalars(select(User).where(User.pbx_id == pbx.id).order_by(User.name)))


def find_user(session: Session, pbx: Pbx, name: str) -> User | None:
    """The PBX's user of that name, or None."""
    return session.scalars(select(User).where(User.pbx_id == pbx.id, User.name == name)).first()


def get_user(session: Session, pbx: Pbx, name: str) -> User:
    user = find_user(session, pbx, name)
    if user is None:
        raise UserError("user.not_found", name=repr(name), pbx=repr(pbx.slug))
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


# ------------------------------------------------------------------ web access
MIN_PASSWORD = 10
MAX_PASSWORD = 256


def _hasher() -> PasswordHasher:
    # argon2id with the library's defaults (RFC 9106's second recommended
    # set: 64 MiB, 3 passes): about 0.1 s of CPU a check on these machines.
    return PasswordHasher()


def set_password(session: Session, pbx: Pbx, name: str, password: str) -> User:
    """Set (or, with "", remove) the user's web password; their open sessions end."""
    user = get_user(session, pbx, name)
    if password and not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise UserError("user.password_length", low=MIN_PASSWORD, high=MAX_PASSWORD)
    if password and password.strip() != password:
        raise UserError("user.password_spaces")
    user.password_hash = _hasher().hash(password) if password else ""
    user.password_generation += 1
    session.flush()
    return user


def check_password(user: User, password: str) -> bool:
    """True when ``password`` is the user's; re-hashes an outdated hash in place."""
    ok, new_hash = verify_password(user.password_hash, password)
    if new_hash is not None:
        user.password_hash = new_hash
    return ok


def verify_password(password_hash: str, password: str) -> tuple[bool, str | None]:
    """Whether ``password`` matches ``password_hash``, and a fresh hash when
    the stored one is outdated; touches no row, so callers hash outside any
    transaction."""
    if not password_hash or len(password) > MAX_PASSWORD:
        return False, None
    hasher = _hasher()
    try:
        hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False, None
    return True, hasher.hash(password) if hasher.check_needs_rehash(password_hash) else None


def dummy_password_check(password: str) -> None:
    """As long as a real check: a login for an unknown address takes the same time."""
    with contextlib.suppress(VerificationError, InvalidHashError):
        _hasher().verify(_DUMMY_HASH, password[:MAX_PASSWORD])


_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$ApioAtXDFKIu9XCBYDwu4w$gtKTxxhNZ2p5srRf681t71BZl5JWpMsm1umgGETYVH4"


def set_roles(session: Session, pbx: Pbx, name: str, roles: set[Role]) -> User:
    """Give the user exactly these roles in their PBX; their open sessions end
    when roles are taken away (a session must not outlive a revoked right)."""
    user = get_user(session, pbx, name)
    before = user.role_set
    # Only what changes: replacing the whole list inserted a role the user
    # kept before deleting its old row (a unique-constraint error).
    for row in [r for r in user.roles if r.role not in roles]:
        user.roles.remove(row)
    session.flush()
    user.roles.extend(UserRole(role=r) for r in sorted(roles - before))
    if before - roles:
        user.password_generation += 1
    session.flush()
    return user
