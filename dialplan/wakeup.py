"""The wake-up service's part of a PBX's generated dialplan.

Wake-up calls ring the room's devices directly: no failover, no busy level;
the ring timeout is the originate's. Busy and congestion are passed back so
the attempt records why it failed.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.asterisk import confgate as gate
from kalliope_tel.dialplan.naming import devices
from kalliope_tel.extensions.accounts import sip_login
from kalliope_tel.features.base import DialplanFragment
from kalliope_tel.hotel.models import Room
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.wakeup.dialplan import wakeup_dial_context


def dialplan_fragment(session: Session, pbx: Pbx, device_template: str) -> DialplanFragment:
    slug = gate.slug(pbx.slug)
    rooms = session.scalars(select(Room).where(Room.pbx_id == pbx.id).order_by(Room.extension)).all()
    out = ["", "; Wake-up calls (originated by kalliope-tel).", f"[{wakeup_dial_context(slug)}]"]
    for room in rooms:
        ext = gate.extension(room.extension)
        dial = devices(ext, sorted(sip_login(pbx, a.username) for a in room.accounts), device_template)
        if dial:
            out += [
                f"exten => {ext},1,Set(__KALLIOPE_PBX={slug})",
                f" same => n,Dial({dial})",
                ' same => n,ExecIf($["${DIALSTATUS}" = "BUSY"]?Busy(1))',
                " same => n,Congestion(1)",
            ]
    # Not included in the internal context: only originates reach it.
    return DialplanFragment([], out)
