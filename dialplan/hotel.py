"""The hotel's part of a PBX's generated configuration.

Dialplan: the cleaning service code, one context per room (dial its devices,
then the failover of the outcome and origin), one context per outbound class
and the fallback class used while kalliope-tel cannot be asked. PJSIP
sections are the core's (``dialplan.extensions``). Every value passes the gate
(``kalliope_tel.asterisk.confgate``) here, where it is written.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.asterisk import confgate as gate
from kalliope_tel.dialplan.naming import context, devices
from kalliope_tel.extensions.accounts import list_classes, sip_login
from kalliope_tel.extensions.models import OutboundClass
from kalliope_tel.features.base import DialplanFragment
from kalliope_tel.hotel.models import Origin, Outcome, Room
from kalliope_tel.hotel.services import effective, get_settings, get_template_defaults
from kalliope_tel.tenancy.models import Pbx

# What happens when no failover is configured for an outcome.
DEFAULT_ENDING = {
    Outcome.NO_ANSWER: "Hangup(19)",
    Outcome.BUSY: "Busy(5)",
    Outcome.UNAVAILABLE: "Congestion(5)",
}


def _ending(slug: str, outcome: Outcome, destination: str | None) -> str:
    if not destination:
        return DEFAULT_ENDING[outcome]
    if destination == "hangup":
        return "Hangup()"
    return f"Goto({context(slug, 'internal')},{gate.number(destination, 'failover destination')},1)"


def dialplan_fragment(session: Session, pbx: Pbx, device_template: str) -> DialplanFragment:
    classes = list_classes(session, pbx)
    if not pbx.hotel_enabled:
        # No room contexts, no service codes: its rooms ring as the plain
        # extensions they are, and *33X is not a cleaning code. Its
        # extensions still call out by the outbound classes.
        return DialplanFragment([], _classes(session, pbx, classes))
    slug = gate.slug(pbx.slug)
    settings = get_settings(session, pbx)
    names = {c.id: c.name for c in classes}
    rooms = session.scalars(select(Room).where(Room.pbx_id == pbx.id).order_by(Room.extension)).all()
    out = ["", "; Hotel service codes.", f"[{context(slug, 'hotel-services')}]"]
    if settings.cleaning_enabled and settings.cleaning_prefix:
        prefix = gate.number(settings.cleaning_prefix, "cleaning prefix")
        out += [
            f"; Cleaning: {prefix}0 clean, {prefix}1 dirty (any other digit is refused).",
            f"exten => _{prefix}X,1,Gosub(kalliope-hotel-cleaning,s,1(${{EXTEN:{len(prefix)}}}))",
        ]
    out += ["", f"[{context(slug, 'rooms')}]"]
    views = [effective(room, names) for room in rooms]
    for view in views:
        ext = gate.extension(view.extension)
        out.append(f"exten => {ext},1,Goto({context(slug, 'room', ext)},s,1)")
    for view in views:
        ext = gate.extension(view.extension)
        dial = devices(ext, [sip_login(pbx, a) for a in view.accounts], device_template)
        out += [
            "",
            f"; Room {ext}: {gate.comment(view.name)} (template {gate.comment(view.template)})",
            f"[{context(slug, 'room', ext)}]",
        ]
        if not dial:
            out += [
                "exten => s,1,NoOp(room has no SIP account)",
                " same => n,Goto(unavailable-${KALLIOPE_ORIGIN},1)",
            ]
        else:
            # Priority 4 by number, not by a label: AMI cannot give labels,
            # and with realtime accounts this context changes in place.
            out += [
                f"exten => s,1,Gosub(kalliope-room-call,s,1({ext},{int(view.ring_timeout)},{dial}))",
                ' same => n,GotoIf($["${KALLIOPE_ROOM_OUTCOME}" = "answered" | '
                '"${KALLIOPE_ROOM_OUTCOME}" = "blocked"]?4)',
                " same => n,Goto(${KALLIOPE_ROOM_OUTCOME}-${KALLIOPE_ORIGIN},1)",
                " same => n,Hangup()",
            ]
        for outcome in Outcome:
            for origin in Origin:
                dest = view.failovers.get(f"{outcome.value}.{origin.value}")
                out.append(f"exten => {outcome.value}-{origin.value},1,{_ending(slug, outcome, dest)}")
    out += _classes(session, pbx, classes)
    return DialplanFragment(
        [context(slug, "rooms"), context(slug, "hotel-services")], out, frozenset(v.extension for v in views)
    )


def _classes(session: Session, pbx: Pbx, classes: list[OutboundClass]) -> list[str]:
    """One context per outbound class, and the fallback class."""
    slug = gate.slug(pbx.slug)
    out: list[str] = []
    for cls in classes:
        out += [
            "",
            f"; Outbound class {gate.identifier(cls.name, 'class name')}: {gate.comment(cls.description)}",
            f"[{context(slug, 'class', cls.name)}]",
        ]
        out += _class_lines(cls)
    defaults = get_template_defaults(session, pbx)
    fallback = next((c for c in classes if c.id == defaults.restricted_class_id), None)
    # Asked nothing while kalliope-tel is unreachable: the default restricted
    # class still lets emergency numbers through; with none, nothing goes out.
    out += [
        "",
        "; Used while kalliope-tel cannot be asked"
        + (f": class {gate.identifier(fallback.name, 'class name')}." if fallback else ": refuse."),
        f"[{context(slug, 'class', 'fallback')}]",
    ]
    out += _class_lines(fallback) if fallback is not None else _refuse_lines()
    return out


def _refuse_lines() -> list[str]:
    return ["exten => _[0-9*#+]!,1,Goto(kalliope-outbound-refused,s,1)"]


def _class_lines(cls: OutboundClass) -> list[str]:
    trunk = gate.identifier(cls.trunk_context, "trunk context")
    lines = [f"exten => {gate.pattern(p)},1,Goto({trunk},${{EXTEN}},1)" for p in sorted(cls.patterns)]
    return lines + _refuse_lines()
