"""Users of a PBX (a person's membership of it): add, list, find, remove.

Callers own the transaction. The person is an account (``accounts``): its
e-mail address is unique and compared exactly (KalliopePBX's rule: Mail2Fax
finds a sender by address). Adding a user with an address that is already
an account's makes that person a user of this PBX too, when the account is
within this PBX's company; any other account's address is refused without
saying whose it is.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.accounts import passwords
from kalliope_tel.accounts import services as accounts
from kalliope_tel.accounts.models import Account
from kalliope_tel.accounts.services import AccountError
from kalliope_tel.asterisk import confgate
from kalliope_tel.oplog.services import Actor, changed, record
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.users.models import Role, User, UserRole

MIN_PASSWORD, MAX_PASSWORD = passwords.MIN_PASSWORD, passwords.MAX_PASSWORD


# One kind of refusal for people, whether about the account or the PBX user.
UserError = AccountError


def _name(value: str) -> str:
    try:
        return confgate.identifier(value, "what.user_name")
    except confgate.UnsafeValue as exc:
        raise UserError(exc.code, **exc.params, field="name") from None


def add_user(session: Session, pbx: Pbx, name: str, email: str, full_name: str = "") -> User:
    name = _name(name)
    email = accounts.check_email(email)
    first, last = accounts.split_full_name(full_name)
    if session.scalar(select(User.id).where(User.pbx_id == pbx.id, User.name == name)) is not None:
        raise UserError("user.exists", name=repr(name), pbx=repr(pbx.slug))
    account = accounts.find_account(session, email)
    if account is None:
        account = accounts.create_account(session, email, first, last)
    elif not accounts.within(session, account.id, {pbx.company_id}) or _in_pbx(session, pbx, account):
        # Not which PBX or company: an admin of one tenant learns nothing about another.
        raise UserError("user.email_taken", email=email, field="email")
    user = User(pbx_id=pbx.id, name=name, account_id=account.id)
    session.add(user)
    session.flush()
    session.refresh(user)
    return user


def administrator_seat(session: Session, pbx: Pbx, account: Account) -> tuple[User, bool]:
    """The account as an administrator of ``pbx`` (Omnia's "Configure PBX":
    a Manager administrator opens the PBX's own pages); True when it was
    made or raised now. The person's identity stays theirs (no check of the
    company's reach: the Manager's rights were checked by the caller)."""
    user = session.scalars(select(User).where(User.pbx_id == pbx.id, User.account_id == account.id)).first()
    if user is None:
        base = re.sub(r"[^a-z0-9._-]", "", account.email.split("@")[0].lower())[:50] or "manager"
        name, n = base, 1
        while session.scalar(select(User.id).where(User.pbx_id == pbx.id, User.name == name)) is not None:
            n += 1
            name = f"{base}-{n}"
        user = User(pbx_id=pbx.id, name=name, account_id=account.id)
        session.add(user)
        session.flush()
    if Role.ADMIN in user.role_set:
        return user, False
    user.roles.append(UserRole(role=Role.ADMIN))
    session.flush()
    return user, True


def _in_pbx(session: Session, pbx: Pbx, account: Account) -> bool:
    return session.scalar(select(User.id).where(User.pbx_id == pbx.id, User.account_id == account.id)) is not None


def update_user(
    session: Session, pbx: Pbx, name: str, *, email: str | None = None, full_name: str | None = None
) -> User:
    """Change the user's e-mail address (their login) or full name: the
    account's, so refused when the person is also a user elsewhere."""
    user = get_user(session, pbx, name)
    first = last = None
    if full_name is not None:
        first, last = accounts.split_full_name(full_name)
        if f"{first} {last}".strip() == user.full_name:
            first = last = None
    accounts.change_identity(session, user.account, {pbx.company_id}, email=email, first_name=first, last_name=last)
    return user


def logged(
    session: Session,
    actor: Actor,
    pbx: Pbx,
    operation: str,
    name: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """A change of the PBX's users in its company's log (only what changed, when both are given)."""
    if before is not None and after is not None:
        before, after = changed(before, after)
        if not after:
            return
    record(session, actor, operation, "pbx_user", f"{name} ({pbx.slug})", company_id=pbx.company_id,
           before=before, after=after)  # fmt: skip


def as_dict(user: User) -> dict[str, Any]:
    """A user as the CLI's JSON and the web's administration show them."""
    return {
        "name": user.name,
        "email": user.email,
        "full_name": user.full_name,
        "roles": sorted(user.role_set),
        "has_password": bool(user.account.password_hash),
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


def find_by_email(session: Session, pbx_id: int, email: str) -> User | None:
    """The PBX's user whose account has exactly this address (Mail2Fax)."""
    return session.scalars(
        select(User).join(Account, Account.id == User.account_id).where(User.pbx_id == pbx_id, Account.email == email)
    ).first()


def remove_user(session: Session, pbx: Pbx, name: str) -> None:
    user = get_user(session, pbx, name)
    # Their faxes stay in the register, without a sender (the key's SET NULL).
    account = user.account
    session.delete(user)
    session.flush()
    accounts.remove_if_unused(session, account)


# ------------------------------------------------------------------ web access
def set_password(session: Session, pbx: Pbx, name: str, password: str) -> User:
    """Set (or, with "", remove) the user's web password (their account's);
    their open sessions end."""
    user = get_user(session, pbx, name)
    accounts.set_password(session, user.account, password)
    return user


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
        accounts.end_sessions(user.account)
    session.flush()
    return user
