"""Extensions: create, change, suspend, delete; their licences and SIP accounts.

A PBX's licences are counted here: an extension past the PBX's purchased
Start or Plus count is refused with the reason. Suspending an extension
removes its endpoints from the generated configuration (its phones can
neither register nor call); deleting it deletes, by the foreign keys, its
accounts, its PIN and whatever a feature keeps on it (a room, a meeting
room), and its number is free at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from kalliope_tel import attempts
from kalliope_tel.accounts.models import Account
from kalliope_tel.asterisk import confgate
from kalliope_tel.extensions import pins
from kalliope_tel.extensions.accounts import bounded_text, create_account, gated, new_password, sip_login
from kalliope_tel.extensions.exceptions import InvalidValue, NotFound
from kalliope_tel.extensions.models import DirectoryMode, Extension, ExtensionPin, ExtensionStatus, Licence
from kalliope_tel.tenancy.models import Pbx, PbxGroup, PbxGroupKind
from kalliope_tel.users.models import User

SORTS = ("number", "name", "licence", "status")
log = structlog.get_logger(__name__)


@dataclass
class CreatedExtension:
    extension: Extension
    credentials: dict[str, str] = field(default_factory=dict)  # SIP login -> password, shown once


def find_extension(session: Session, pbx: Pbx, number: str) -> Extension | None:
    return session.scalars(select(Extension).where(Extension.pbx_id == pbx.id, Extension.number == number)).first()


def get_extension(session: Session, pbx: Pbx, number: str) -> Extension:
    found = find_extension(session, pbx, number)
    if found is None:
        raise NotFound("extension.not_found", number=number)
    return found


def taken_in_group(session: Session, pbx: Pbx, number: str) -> str | None:
    """In a numbering group every extension number is the group's: the slug
    of the other member PBX that has ``number`` already, or None."""
    if pbx.group_id is None:
        return None
    group = session.get(PbxGroup, pbx.group_id)
    if group is None or group.kind is not PbxGroupKind.NUMBERING:
        return None
    query = (
        select(Pbx.slug)
        .join(Extension, Extension.pbx_id == Pbx.id)
        .where(Pbx.group_id == group.id, Pbx.id != pbx.id, Extension.number == number)
    )
    return session.scalars(query).first()


def licences_used(session: Session, pbx: Pbx) -> dict[Licence, int]:
    rows = session.execute(
        select(Extension.licence, func.count()).where(Extension.pbx_id == pbx.id).group_by(Extension.licence)
    )
    used = dict.fromkeys(Licence, 0)
    used.update({Licence(licence): count for licence, count in rows})
    return used


def purchased(pbx: Pbx, licence: Licence) -> int | None:
    return pbx.plus_licences if licence is Licence.PLUS else pbx.start_licences


def _check_licence(session: Session, pbx: Pbx, licence: Licence, adding: int = 1) -> None:
    limit = purchased(pbx, licence)
    if limit is None:
        return
    used = licences_used(session, pbx)[licence]
    if used + adding > limit:
        raise InvalidValue(
            "extension.licences_exhausted",
            licence=licence.value.capitalize(),
            used=used,
            limit=limit,
            setting="licence",
        )


def create_extension(
    session: Session,
    pbx: Pbx,
    number: str,
    *,
    name: str = "",
    licence: Licence = Licence.START,
    pin: str | None = None,
    user_id: int | None = None,
    accounts: int = 1,
    password: str | None = None,
) -> CreatedExtension:
    """A new extension with ``accounts`` SIP accounts (the first named like
    the number, the next ``<number>-2``...); their passwords are returned
    once (``password`` for the first, when given)."""
    gated(confgate.extension, number, "number")
    if find_extension(session, pbx, number) is not None:
        raise InvalidValue("extension.exists", number=number, setting="number")
    other = taken_in_group(session, pbx, number)
    if other is not None:
        raise InvalidValue("extension.taken_in_group", number=number, pbx=other, setting="number")
    _check_licence(session, pbx, licence)
    ext = Extension(
        pbx_id=pbx.id,
        number=number,
        name=bounded_text(name, 80, "extension name"),
        licence=licence,
        user_id=_check_user(session, pbx, user_id),
    )
    session.add(ext)
    session.flush()
    created = CreatedExtension(ext)
    for i in range(accounts):
        username = number if i == 0 else f"{number}-{i + 1}"
        account, secret = create_account(session, pbx, username, password if i == 0 else None)
        account.extension_id = ext.id
        created.credentials[sip_login(pbx, username)] = secret
    if pin:
        set_pin(session, ext, pin)
    session.flush()
    session.refresh(ext)
    return created


def _check_user(session: Session, pbx: Pbx, user_id: int | None) -> int | None:
    """A user of the same PBX (another PBX's user id is refused as unknown)."""
    if user_id is None:
        return None
    user = session.get(User, user_id)
    if user is None or user.pbx_id != pbx.id:
        raise NotFound("extension.no_user", user=user_id)
    return user.id


def update_extension(
    session: Session,
    pbx: Pbx,
    number: str,
    *,
    name: str | None = None,
    licence: Licence | None = None,
    user_id: int | None = None,
    clear_user: bool = False,
    directory_mode: DirectoryMode | None = None,
    show_in_phonebook: bool | None = None,
) -> Extension:
    ext = get_extension(session, pbx, number)
    if name is not None:
        ext.name = bounded_text(name, 80, "extension name")
    if directory_mode is not None:
        ext.directory_mode = directory_mode
    if show_in_phonebook is not None:
        ext.show_in_phonebook = show_in_phonebook
    if licence is not None and licence is not ext.licence:
        _check_licence(session, pbx, licence)
        ext.licence = licence
    if user_id is not None or clear_user:
        ext.user_id = _check_user(session, pbx, user_id)
    session.flush()
    return ext


def set_status(session: Session, pbx: Pbx, number: str, status: ExtensionStatus) -> Extension:
    ext = get_extension(session, pbx, number)
    ext.status = status
    session.flush()
    return ext


def new_passwords(session: Session, pbx: Pbx, number: str, password: str | None = None) -> dict[str, str]:
    """New passwords for the extension's accounts (shown once); the old ones stop working."""
    ext = get_extension(session, pbx, number)
    if not ext.accounts:
        raise InvalidValue("extension.no_accounts", number=number)
    out = {
        sip_login(pbx, a.username): new_password(pbx, a, password if i == 0 else None)
        for i, a in enumerate(ext.accounts)
    }
    session.flush()
    return out


def delete_extension(session: Session, pbx: Pbx, number: str) -> None:
    """The extension and, by cascade, everything kept on it."""
    session.delete(get_extension(session, pbx, number))
    session.flush()


def set_pin(session: Session, ext: Extension, pin: str) -> None:
    row = session.get(ExtensionPin, ext.id)
    hashed = pins.hash_pin(pins.check_form(pin))
    if row is None:
        session.add(ExtensionPin(extension_id=ext.id, pin_hash=hashed))
    else:
        row.pin_hash = hashed
    session.flush()


def has_pin(session: Session, ext: Extension) -> bool:
    return session.get(ExtensionPin, ext.id) is not None


@dataclass(frozen=True)
class ExtensionFilter:
    text: str = ""  # number, name, the user's name or e-mail
    licence: Licence | None = None
    status: ExtensionStatus | None = None
    sort: str = "number"
    descending: bool = False


def list_extensions(session: Session, pbx: Pbx, filters: ExtensionFilter | None = None) -> list[Extension]:
    filters = filters or ExtensionFilter()
    query = select(Extension).where(Extension.pbx_id == pbx.id)
    if filters.licence is not None:
        query = query.where(Extension.licence == filters.licence)
    if filters.status is not None:
        query = query.where(Extension.status == filters.status)
    if filters.text.strip():
        like = f"%{filters.text.strip().lower()}%"
        query = (
            query.outerjoin(User, User.id == Extension.user_id)
            .outerjoin(Account, Account.id == User.account_id)
            .where(
                or_(
                    Extension.number.contains(filters.text.strip()),
                    func.lower(Extension.name).like(like),
                    func.lower(Account.email).like(like),
                    func.lower(Account.first_name).like(like),
                    func.lower(Account.last_name).like(like),
                )
            )
        )
    if filters.sort not in SORTS:
        raise InvalidValue("extension.sort", sort=filters.sort, choices=", ".join(SORTS))
    # Names as people read them (case aside), the same on both databases.
    column: Any = func.lower(Extension.name) if filters.sort == "name" else getattr(Extension, filters.sort)
    query = query.order_by(column.desc() if filters.descending else column, Extension.number)
    return list(session.scalars(query))


def check_pin(session: Session, pbx: Pbx, number: str, pin: str, now: datetime | None = None) -> str:
    """One try of the extension's service PIN: ok, wrong, paused or no_pin.
    Every try counts (``attempts``, in the store: every node sees them);
    the right PIN starts the count afresh; past three in the window, even
    the right one is refused until the window ends. Refusals are logged."""
    key = f"pin:extension:{pbx.id}:{number[:20]}"
    try:
        attempts.attempt(session, key, pins.MAX_TRIES, pins.PAUSE, what="attempts.pins", now=now)
    except attempts.TooManyAttempts:
        verdict = pins.Verdict.PAUSED
    else:
        ext = find_extension(session, pbx, number)
        row = session.get(ExtensionPin, ext.id) if ext is not None else None
        # Compared whatever happens (a dummy hash when there is no PIN): same time.
        matches = pins.pin_matches(row.pin_hash if row else "", pin)
        if row is None:
            verdict = pins.Verdict.NO_PIN
        elif matches:
            attempts.forget(session, key)
            verdict = pins.Verdict.OK
        else:
            verdict = pins.Verdict.WRONG
    if verdict != pins.Verdict.OK:
        log.warning("extension.pin_refused", pbx=pbx.slug, extension=number, verdict=verdict)
    return verdict
