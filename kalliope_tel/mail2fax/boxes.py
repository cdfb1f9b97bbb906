"""Mail2Fax boxes of a PBX: add, list, update, remove; and which serve node
reads which box (a lease, so one node at a time holds a box's connection and
another takes over when it dies). Callers own the transaction."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kalliope_tel.asterisk import confgate
from kalliope_tel.catalogue import Term
from kalliope_tel.db.base import utcnow
from kalliope_tel.errors import KalliopeError
from kalliope_tel.fax.models import FaxInstance
from kalliope_tel.mail.addresses import check_address
from kalliope_tel.mail2fax.models import Mail2FaxBox, Protocol
from kalliope_tel.tenancy.companies import serving_pbx_ids
from kalliope_tel.tenancy.models import Pbx

LEASE = timedelta(seconds=30)
DEFAULT_PORTS = {
    (Protocol.IMAP, True): 993,
    (Protocol.IMAP, False): 143,
    (Protocol.POP3, True): 995,
    (Protocol.POP3, False): 110,
}
_HOST_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]")


class BoxError(KalliopeError):
    pass


class BoxNotFound(BoxError):
    pass


class BoxInUse(BoxError):
    pass


def _name(value: str) -> str:
    try:
        return confgate.identifier(value, "what.box_name")
    except confgate.UnsafeValue as exc:
        raise BoxError(exc.code, **exc.params, field="name") from None


def _check(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if key == "address":
            try:
                out[key] = check_address(value)
            except ValueError as exc:
                raise BoxError("box.address", reason=str(exc), field=key) from None
        elif key == "protocol":
            try:
                out[key] = Protocol(value)
            except ValueError:
                raise BoxError("box.protocol", field=key) from None
        elif key == "server":
            if not value or len(value) > 253 or not set(value) <= _HOST_CHARS:
                raise BoxError("box.server", field=key)
            out[key] = value
        elif key in ("port", "timeout", "poll_seconds", "max_bytes"):
            low, high = {"port": (1, 65535), "timeout": (1, 600), "poll_seconds": (1, 3600)}.get(
                key, (10_000, 200_000_000)
            )
            if not isinstance(value, int) or not low <= value <= high:
                raise BoxError("box.number", what=Term("boxfield." + key), low=low, high=high, field=key)
            out[key] = value
        elif key in ("username", "folder", "processed_folder", "ca_file"):
            text = str(value)
            limit = 500 if key == "ca_file" else 200
            if len(text) > limit or any(ord(c) < 32 or c == "\x7f" for c in text) or '"' in text:
                raise BoxError("box.text", what=Term("boxfield." + key), limit=limit, field=key)
            if key == "folder" and not text:
                raise BoxError("box.folder", field=key)
            out[key] = text
        elif key == "trusted_authserv_id":
            text = str(value).strip()
            if len(text) > 253 or not set(text) <= _HOST_CHARS:
                raise BoxError("box.authserv", field=key)
            out[key] = text
        elif key in ("enabled", "ssl"):
            out[key] = bool(value)
        elif key == "password":
            if not value or len(value) > 200 or any(c in value for c in "\r\n\0"):
                raise BoxError("box.password", field=key)
            out[key] = value
        elif key in ("pgp_key", "pgp_fingerprint"):
            out[key] = value
        else:
            raise BoxError("box.unknown_setting", setting=key)
    return out


def add_box(session: Session, pbx: Pbx, name: str, **values: Any) -> Mail2FaxBox:
    name = _name(name)
    if get_box_or_none(session, pbx, name) is not None:
        raise BoxError("box.exists", name=repr(name), pbx=repr(pbx.slug), field="name")
    checked = _check(values)
    for needed in ("address", "server", "password"):
        if needed not in checked:
            raise BoxError("box.needs", what=Term("boxfield." + needed), field=needed)
    checked.setdefault("protocol", Protocol.IMAP)
    checked.setdefault("ssl", True)
    checked.setdefault("port", DEFAULT_PORTS[(checked["protocol"], checked["ssl"])])
    checked.setdefault("username", checked["address"])
    _address_free(session, checked["address"], None)
    box = Mail2FaxBox(pbx_id=pbx.id, name=name, **checked)
    session.add(box)
    session.flush()
    return box


def _address_free(session: Session, address: str, box: Mail2FaxBox | None) -> None:
    holder = session.scalars(select(Mail2FaxBox).where(Mail2FaxBox.address == address)).first()
    if holder is not None and holder is not box:
        # Not which PBX: one tenant's admin learns nothing of another's.
        raise BoxError("box.address_taken", address=address, field="address")


def update_box(session: Session, pbx: Pbx, name: str, **values: Any) -> Mail2FaxBox:
    box = get_box(session, pbx, name)
    checked = _check(values)
    if "address" in checked:
        _address_free(session, checked["address"], box)
    for key, value in checked.items():
        setattr(box, key, value)
    if {"server", "port", "username", "password", "protocol", "ssl", "folder"} & checked.keys():
        box.last_error, box.last_ok_at = "", None  # the next login tells
    session.flush()
    return box


def get_box_or_none(session: Session, pbx: Pbx, name: str) -> Mail2FaxBox | None:
    return session.scalars(select(Mail2FaxBox).where(Mail2FaxBox.pbx_id == pbx.id, Mail2FaxBox.name == name)).first()


def get_box(session: Session, pbx: Pbx, name: str) -> Mail2FaxBox:
    box = get_box_or_none(session, pbx, name)
    if box is None:
        raise BoxNotFound("box.not_found", name=repr(name), pbx=repr(pbx.slug))
    return box


def box_names(session: Session, pbx: Pbx) -> list[str]:
    """The PBX's boxes by name (what a fax instance links to; lent to fax)."""
    return list(
        session.scalars(select(Mail2FaxBox.name).where(Mail2FaxBox.pbx_id == pbx.id).order_by(Mail2FaxBox.name))
    )


def list_boxes(session: Session, pbx: Pbx) -> list[Mail2FaxBox]:
    return list(session.scalars(select(Mail2FaxBox).where(Mail2FaxBox.pbx_id == pbx.id).order_by(Mail2FaxBox.name)))


def linked_instances(session: Session, box: Mail2FaxBox) -> list[FaxInstance]:
    """The fax instances using the box, first linked first (the seed's default instance)."""
    return list(
        session.scalars(
            select(FaxInstance)
            .where(FaxInstance.pbx_id == box.pbx_id, FaxInstance.mail2fax_box == box.name)
            .order_by(FaxInstance.id)
        )
    )


def remove_box(session: Session, pbx: Pbx, name: str) -> None:
    box = get_box(session, pbx, name)
    users = [i.name for i in linked_instances(session, box)]
    if users:
        raise BoxInUse("box.in_use", name=repr(name), instances=users)
    session.delete(box)
    session.flush()


# ---------------------------------------------------------------- leases
def hold_boxes(session: Session, node: str, now: datetime | None = None) -> list[int]:
    """Renew this node's boxes and take the enabled ones nobody holds (or
    whose holder stopped renewing): the ids this node reads now."""
    now = now or utcnow()
    rows = session.scalars(
        select(Mail2FaxBox)
        .where(
            Mail2FaxBox.enabled.is_(True),
            Mail2FaxBox.pbx_id.in_(serving_pbx_ids()),  # a suspended customer's boxes are not read
            or_(
                Mail2FaxBox.holder == node,
                Mail2FaxBox.holder.is_(None),
                Mail2FaxBox.lease_until.is_(None),
                Mail2FaxBox.lease_until < now,
            ),
        )
        .order_by(Mail2FaxBox.id)
        .with_for_update(skip_locked=True)
    ).all()
    for row in rows:
        row.holder, row.lease_until = node, now + LEASE
    session.flush()
    return [row.id for row in rows]


def release_boxes(session: Session, node: str) -> None:
    for row in session.scalars(select(Mail2FaxBox).where(Mail2FaxBox.holder == node)):
        row.holder, row.lease_until = None, None
    session.flush()


def record_health(session: Session, box_id: int, error: str | None) -> None:
    box = session.get(Mail2FaxBox, box_id)
    if box is None:
        return
    if error is None:
        box.last_ok_at, box.last_error = utcnow(), ""
    else:
        box.last_error = error[:2000]
    session.flush()
