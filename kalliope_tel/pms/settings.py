"""A PBX's PMS link settings: checked before they are kept (the host and
port reach a socket, the class map the hotel's classes)."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from sqlalchemy.orm import Session

from kalliope_tel.errors import KalliopeError
from kalliope_tel.pms.models import LinkMode, PmsLink
from kalliope_tel.pms.owed import link_of
from kalliope_tel.tenancy.models import Pbx

_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,253}[A-Za-z0-9])?")


class BadPmsSetting(KalliopeError):
    pass


def _host(value: str) -> str:
    value = value.strip()
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        if not _HOST.fullmatch(value):
            raise BadPmsSetting("pms.bad_host", host=value[:60]) from None
        return value


def update(session: Session, pbx: Pbx, values: dict[str, Any], cleaning_from: int) -> PmsLink:
    """Set what is given; a new link reports cleaning changes from now on
    (``cleaning_from``: the newest change at the time)."""
    link = link_of(session, pbx.id)
    if link is None:
        link = PmsLink(pbx_id=pbx.id, enabled=False, mode=LinkMode.CONNECT, host="", port=0, postings=True,
                       room_status=False, class_map={}, state="down", last_record="", last_error="",
                       resync_wanted=False, refused_records=0, cleaning_seen=cleaning_from)  # fmt: skip
        session.add(link)
    if "mode" in values and values["mode"] is not None:
        link.mode = LinkMode(values["mode"])
    if values.get("host") is not None:
        link.host = _host(values["host"])
    if values.get("port") is not None:
        if not 1 <= int(values["port"]) <= 65535:
            raise BadPmsSetting("pms.bad_port", port=str(values["port"]))
        link.port = int(values["port"])
    for flag in ("enabled", "postings", "room_status"):
        if values.get(flag) is not None:
            setattr(link, flag, bool(values[flag]))
    if values.get("class_map") is not None:
        mapping = dict(values["class_map"])
        if any(
            not re.fullmatch(r"[0-9A-Z]{1,2}", k) or v not in ("standard", "restricted") for k, v in mapping.items()
        ):
            raise BadPmsSetting("pms.bad_class_map")
        link.class_map = mapping
    if link.enabled and (not link.port or (link.mode is LinkMode.CONNECT and not link.host)):
        raise BadPmsSetting("pms.incomplete")
    session.flush()
    return link


def view(link: PmsLink | None) -> dict[str, Any]:
    if link is None:
        return {"enabled": False, "mode": "connect", "host": "", "port": 0, "postings": True, "room_status": False,
                "class_map": {}}  # fmt: skip
    return {"enabled": link.enabled, "mode": link.mode.value, "host": link.host, "port": link.port,
            "postings": link.postings, "room_status": link.room_status, "class_map": dict(link.class_map)}  # fmt: skip
