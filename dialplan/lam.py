"""LAM's part of a PBX's generated dialplan: its dial-in number."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.asterisk import confgate as gate
from kalliope_tel.dialplan.naming import context
from kalliope_tel.features.base import DialplanFragment
from kalliope_tel.lam.models import LamRoom
from kalliope_tel.lam.services import get_settings
from kalliope_tel.tenancy.models import Pbx


def dialplan_fragment(session: Session, pbx: Pbx, device_template: str) -> DialplanFragment:
    settings = get_settings(session, pbx)
    personal = session.scalar(
        select(LamRoom.id).where(LamRoom.pbx_id == pbx.id, LamRoom.extension_id.is_not(None)).limit(1)
    )
    if not settings.dial_in_number or not (settings.licences or personal):
        return DialplanFragment()
    slug = gate.slug(pbx.slug)
    number = gate.extension(settings.dial_in_number)
    name = context(slug, "lam")
    return DialplanFragment(
        [name],
        [
            "",
            "; LAM meeting dial-in.",
            f"[{name}]",
            f"exten => {number},1,Set(__KALLIOPE_PBX={slug})",
            " same => n,Goto(kalliope-lam-dial-in,s,1)",
        ],
    )
