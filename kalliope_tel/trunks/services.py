"""Carriers and SIP trunks as services: checked values, the Manager log
(the password never in it), and Asterisk following on its own (a trunk's
change bumps the configuration of every PBX it serves; ``serve`` applies
it). Callers own the transaction and decide who may call (``omnia.rights``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.asterisk import confgate as gate
from kalliope_tel.oplog.services import Actor, changed, record
from kalliope_tel.tenancy.models import Company
from kalliope_tel.trunks.exceptions import InUse, InvalidValue, NotFound
from kalliope_tel.trunks.models import Carrier, PhoneNumber, SipTrunk, Transport

CODECS = ("alaw", "ulaw", "g722", "g729", "opus", "gsm")
TRUNK_FIELDS = ("description", "carrier", "endpoint", "auth_required", "username", "password")


def _text(value: Any, limit: int, field: str, required: bool = True) -> str:
    if not isinstance(value, str) or len(value.strip()) > limit or (required and not value.strip()):
        raise InvalidValue("trunks.text", field=field, limit=limit)
    return " ".join(value.split())


def _gated(check: Any, value: Any, field: str) -> str:
    try:
        result: str = check(value)
    except gate.UnsafeValue as exc:
        raise InvalidValue(exc.code, **exc.params, setting=field) from None
    return result


# ------------------------------------------------------------------ carriers
def carrier_fields(carrier: Carrier) -> dict[str, Any]:
    return {
        "name": carrier.name,
        "endpoints": list(carrier.endpoints),
        "transport": carrier.transport.value,
        "codecs": carrier.codecs,
        "registers": carrier.registers,
    }


def _codecs(value: Any) -> str:
    items = [c.strip() for c in str(value).split(",") if c.strip()]
    if not items or any(c not in CODECS for c in items):
        raise InvalidValue("trunks.codecs", known=", ".join(CODECS))
    return ",".join(dict.fromkeys(items))


def list_carriers(session: Session) -> list[Carrier]:
    return list(session.scalars(select(Carrier).order_by(Carrier.name)))


def get_carrier(session: Session, name: str) -> Carrier:
    found = session.scalars(select(Carrier).where(Carrier.name == name)).first()
    if found is None:
        raise NotFound("trunks.no_carrier", carrier=name)
    return found


def save_carrier(
    session: Session,
    actor: Actor,
    name: str,
    endpoints: list[str],
    transport: str = "udp",
    codecs: str = "alaw,ulaw",
    registers: bool = True,
) -> Carrier:
    """Create the carrier, or change the one of that name."""
    name = _text(name, 60, "name")
    if not endpoints or len(endpoints) > 10:
        raise InvalidValue("trunks.endpoints")
    hosts = [_gated(gate.sip_host, e.strip(), "endpoints") for e in endpoints]
    if transport not in {t.value for t in Transport}:
        raise InvalidValue("trunks.transport", known="udp, tcp, tls")
    carrier = session.scalars(select(Carrier).where(Carrier.name == name)).first()
    before = carrier_fields(carrier) if carrier else None
    if carrier is None:
        carrier = Carrier(name=name)
        session.add(carrier)
    carrier.endpoints = hosts
    carrier.transport = Transport(transport)
    carrier.codecs = _codecs(codecs)
    carrier.registers = bool(registers)
    session.flush()
    old, new = changed(before or {}, carrier_fields(carrier))
    if before is None or new:
        operation = "log.carrier_created" if before is None else "log.carrier_updated"
        record(session, actor, operation, "carrier", carrier.name, company_id=None, before=old or None, after=new)
    return carrier


def delete_carrier(session: Session, actor: Actor, name: str) -> None:
    carrier = get_carrier(session, name)
    used = session.scalars(select(SipTrunk.description).where(SipTrunk.carrier_id == carrier.id)).all()
    if used:
        raise InUse("trunks.carrier_in_use", carrier=name, trunks=", ".join(sorted(used)))
    session.delete(carrier)
    record(session, actor, "log.carrier_deleted", "carrier", name, company_id=None, before=carrier_fields(carrier))


# ------------------------------------------------------------------ trunks
def trunk_fields(trunk: SipTrunk) -> dict[str, Any]:
    """What the list, the log and --json show: the password only as whether one is set."""
    return {
        "id": trunk.id,
        "description": trunk.description,
        "carrier": trunk.carrier.name,
        "endpoint": trunk.endpoint,
        "auth_required": trunk.auth_required,
        "username": trunk.username,
        "password_set": bool(trunk.password),
        "registers": trunk.carrier.registers,
    }


def trunks_of(session: Session, company: Company) -> list[SipTrunk]:
    query = select(SipTrunk).where(SipTrunk.company_id == company.id).order_by(SipTrunk.id)
    return list(session.scalars(query))


def trunk_of(session: Session, company: Company, trunk_id: int) -> SipTrunk:
    """The company's trunk; another company's is "not found" like a missing one."""
    trunk = session.get(SipTrunk, trunk_id)
    if trunk is None or trunk.company_id != company.id:
        raise NotFound("trunks.no_trunk", trunk=trunk_id)
    return trunk


def _check_trunk(session: Session, values: dict[str, Any], trunk: SipTrunk | None) -> dict[str, Any]:
    unknown = sorted(set(values) - set(TRUNK_FIELDS))
    if unknown:
        raise InvalidValue("manager.unknown_field", field=unknown[0])
    out = dict(values)
    if "description" in out:
        out["description"] = _text(out["description"], 200, "description")
    if "carrier" in out:
        out["carrier"] = get_carrier(session, str(out["carrier"]))
    carrier: Carrier = out.get("carrier") or trunk.carrier  # type: ignore[union-attr]
    endpoint = out.get("endpoint") or (trunk.endpoint if trunk and "carrier" not in out else carrier.endpoints[0])
    if endpoint not in carrier.endpoints:
        raise InvalidValue(
            "trunks.endpoint", endpoint=endpoint, carrier=carrier.name, known=", ".join(carrier.endpoints)
        )
    out["endpoint"] = endpoint
    if out.get("username"):
        out["username"] = _gated(gate.sip_user, out["username"], "username")
    if out.get("password"):
        out["password"] = _gated(gate.sip_password, out["password"], "password")
    auth = out.get("auth_required", trunk.auth_required if trunk else True)
    username = out.get("username", trunk.username if trunk else "")
    password = out.get("password", trunk.password if trunk else "")
    if auth and not (username and password):
        raise InvalidValue("trunks.auth_needs_credentials", setting="password" if username else "username")
    if carrier.registers and not auth:
        raise InvalidValue("trunks.registration_needs_auth", carrier=carrier.name)
    return out


def create_trunk(session: Session, actor: Actor, company: Company, **values: Any) -> SipTrunk:
    checked = _check_trunk(session, values, None)
    if "description" not in checked or "carrier" not in checked:
        raise InvalidValue("trunks.description_and_carrier")
    trunk = SipTrunk(company_id=company.id, **{k: v for k, v in checked.items() if k != "carrier"})
    trunk.carrier_id = checked["carrier"].id
    trunk.carrier = checked["carrier"]
    session.add(trunk)
    session.flush()
    record(session, actor, "log.trunk_created", "trunk", trunk.description, company_id=company.id,
           after=trunk_fields(trunk))  # fmt: skip
    return trunk


def update_trunk(session: Session, actor: Actor, company: Company, trunk: SipTrunk, **values: Any) -> SipTrunk:
    checked = _check_trunk(session, values, trunk)
    before = trunk_fields(trunk)
    for key, value in checked.items():
        if key == "carrier":
            trunk.carrier_id, trunk.carrier = value.id, value
        else:
            setattr(trunk, key, value)
    session.flush()
    old, new = changed(before, trunk_fields(trunk))
    if new or "password" in checked:
        record(session, actor, "log.trunk_updated", "trunk", trunk.description, company_id=company.id,
               before=old, after=new | ({"password": "changed"} if "password" in checked else {}))  # fmt: skip
    return trunk


def delete_trunk(session: Session, actor: Actor, company: Company, trunk: SipTrunk) -> None:
    """Refused while numbers use it, with the list of them."""
    numbers = session.scalars(select(PhoneNumber.number).where(PhoneNumber.trunk_id == trunk.id)).all()
    if numbers:
        raise InUse("trunks.trunk_has_numbers", trunk=trunk.description, numbers=", ".join(sorted(numbers)))
    before = trunk_fields(trunk)
    session.delete(trunk)
    session.flush()
    record(session, actor, "log.trunk_deleted", "trunk", before["description"], company_id=company.id, before=before)


def search_trunks(trunks: list[SipTrunk], text: str = "", carrier: str = "") -> list[SipTrunk]:
    """The list's search (description, carrier, endpoint, username) and carrier filter."""
    needle = text.strip().lower()
    return [
        t
        for t in trunks
        if (not carrier or t.carrier.name == carrier)
        and (not needle or any(needle in v.lower() for v in (t.description, t.carrier.name, t.endpoint, t.username)))
    ]
