"""SIP accounts and outbound classes: creating, finding, naming them.

Every value a phone or the dialplan will read goes through the Asterisk
config gate here (``gated``), refused with the field it came from.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.asterisk import confgate
from kalliope_tel.extensions.exceptions import InvalidValue, NotFound
from kalliope_tel.extensions.models import OutboundClass, SipAccount
from kalliope_tel.tenancy.models import Pbx

DEFAULT_REALM = "kalliope"


def gated(check: Callable[[object], str], value: object, setting: str = "") -> str:
    """A value through the Asterisk config gate, refused naming ``setting``
    (the field a form shows it under)."""
    try:
        return check(value)
    except confgate.UnsafeValue as exc:
        raise InvalidValue(exc.code, **exc.params, **({"setting": setting} if setting else {})) from None


def bounded_text(value: str, limit: int, what: str) -> str:
    """Free text for a column of ``limit`` characters: refused, with the
    reason, when longer (PostgreSQL would refuse it with a database error)."""
    value = value.strip()
    if len(value) > limit:
        raise InvalidValue("hotel.text_length", what=what, limit=limit, given=len(value))
    if "\x00" in value:
        raise InvalidValue("hotel.text_nul", what=what)
    return value


def sip_login(pbx: Pbx, username: str) -> str:
    """What a phone registers with, and its PJSIP endpoint, auth and AOR id.

    The default PBX keeps plain names (a single-site install registers
    ``101``); every other PBX's are ``<slug>-<name>``, so PBXs that share one
    Asterisk never share an endpoint. Slugs have no ``-``, so the first ``-``
    always separates them; ``create_account`` refuses a default-PBX name that
    would read as another PBX's.
    """
    return username if pbx.is_default else f"{pbx.slug}-{username}"


def ha1(username: str, realm: str, password: str) -> str:
    return hashlib.md5(f"{username}:{realm}:{password}".encode(), usedforsecurity=False).hexdigest()


def check_sip_password(secret: str) -> str:
    if not 10 <= len(secret) <= 128 or not secret.isprintable():
        raise InvalidValue("hotel.account_password")
    return secret


def create_account(
    session: Session,
    pbx: Pbx,
    username: str,
    password: str | None = None,
    realm: str = DEFAULT_REALM,
) -> tuple[SipAccount, str]:
    """Create a SIP account; return it and its password (generated if not given), shown once."""
    gated(confgate.sip_user, username, "username")
    if find_account(session, pbx, username) is not None:
        raise InvalidValue("hotel.account_exists", account=repr(username))
    head, dash, _ = username.partition("-")
    if pbx.is_default and dash and session.scalars(select(Pbx.id).where(Pbx.slug == head)).first():
        raise InvalidValue("hotel.account_other_pbx", account=repr(username), pbx=repr(head))
    secret = check_sip_password(password or secrets.token_urlsafe(15))
    account = SipAccount(
        pbx_id=pbx.id, username=username, realm=realm, ha1=ha1(sip_login(pbx, username), realm, secret)
    )
    session.add(account)
    session.flush()
    return account, secret


def new_password(pbx: Pbx, account: SipAccount, password: str | None = None) -> str:
    """A new password for the account (generated if not given), shown once."""
    secret = check_sip_password(password or secrets.token_urlsafe(15))
    account.ha1 = ha1(sip_login(pbx, account.username), account.realm, secret)
    return secret


def list_accounts(session: Session, pbx: Pbx) -> list[SipAccount]:
    return list(session.scalars(select(SipAccount).where(SipAccount.pbx_id == pbx.id).order_by(SipAccount.username)))


def find_account(session: Session, pbx: Pbx, username: str) -> SipAccount | None:
    query = select(SipAccount).where(SipAccount.pbx_id == pbx.id, SipAccount.username == username)
    return session.scalars(query).first()


def get_account(session: Session, pbx: Pbx, username: str) -> SipAccount:
    found = find_account(session, pbx, username)
    if found is None:
        raise NotFound("hotel.no_account", account=repr(username))
    return found


# ------------------------------------------------------------------ outbound classes
def _check_trunk_context(session: Session, pbx: Pbx, trunk_context: str) -> None:
    """A class leaves by a context of its own PBX (``kt-<slug>-trunk-<id>``)
    or the installation's (``kalliope-trunk``), never by another PBX's."""
    gated(lambda v: confgate.identifier(v, "what.trunk_context"), trunk_context, "trunk_context")
    owner = trunk_context.split("-")[1] if trunk_context.startswith("kt-") and trunk_context.count("-") >= 2 else ""
    if owner and owner != pbx.slug and session.scalars(select(Pbx.id).where(Pbx.slug == owner)).first() is not None:
        raise InvalidValue("hotel.class_other_pbx", context=trunk_context, setting="trunk_context")


def create_class(
    session: Session,
    pbx: Pbx,
    name: str,
    patterns: list[str],
    trunk_context: str,
    description: str = "",
) -> OutboundClass:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", name) or name == "fallback":
        raise InvalidValue("hotel.class_name", name=repr(name))
    if not patterns:
        raise InvalidValue("hotel.class_patterns", name=name, setting="patterns")
    for p in patterns:
        gated(confgate.pattern, p, "patterns")
    _check_trunk_context(session, pbx, trunk_context)
    if session.scalars(select(OutboundClass).where(OutboundClass.pbx_id == pbx.id, OutboundClass.name == name)).first():
        raise InvalidValue("hotel.class_exists", name=repr(name))
    cls = OutboundClass(
        pbx_id=pbx.id,
        name=name,
        patterns=patterns,
        trunk_context=trunk_context,
        description=bounded_text(description, 200, "class description"),
    )
    session.add(cls)
    session.flush()
    return cls


def update_class(
    session: Session,
    pbx: Pbx,
    name: str,
    *,
    patterns: list[str] | None = None,
    trunk_context: str | None = None,
    description: str | None = None,
) -> OutboundClass:
    """Change a class's patterns, trunk context or description (its name is its key)."""
    cls = get_class(session, pbx, name)
    if patterns is not None:
        if not patterns:
            raise InvalidValue("hotel.class_patterns", name=name, setting="patterns")
        for p in patterns:
            gated(confgate.pattern, p, "patterns")
        cls.patterns = patterns
    if trunk_context is not None:
        _check_trunk_context(session, pbx, trunk_context)
        cls.trunk_context = trunk_context
    if description is not None:
        cls.description = bounded_text(description, 200, "class description")
    session.flush()
    return cls


def get_class(session: Session, pbx: Pbx, name: str) -> OutboundClass:
    cls = session.scalars(
        select(OutboundClass).where(OutboundClass.pbx_id == pbx.id, OutboundClass.name == name)
    ).first()
    if cls is None:
        raise NotFound("hotel.no_class", name=name)
    return cls


def list_classes(session: Session, pbx: Pbx) -> list[OutboundClass]:
    return list(
        session.scalars(select(OutboundClass).where(OutboundClass.pbx_id == pbx.id).order_by(OutboundClass.name))
    )


def class_names(session: Session, pbx: Pbx) -> dict[int, str]:
    return {c.id: c.name for c in list_classes(session, pbx)}
