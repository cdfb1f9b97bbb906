"""The fax service's part of a PBX's generated dialplan: each enabled fax
instance's selection leads to the shared ``kalliope-fax-in`` context, which
receives the fax with kalliope-tel's engine, or with Asterisk's res_fax when
the caller is a T.38-capable PJSIP endpoint (see extensions_kalliope.conf)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.asterisk import confgate as gate
from kalliope_tel.dialplan.naming import context
from kalliope_tel.dialplan_variables import FAX_INSTANCE, FAX_REACHED
from kalliope_tel.fax.models import FaxInstance
from kalliope_tel.features.base import DialplanFragment
from kalliope_tel.tenancy.models import Pbx


def dialplan_fragment(session: Session, pbx: Pbx, device_template: str) -> DialplanFragment:
    slug = gate.slug(pbx.slug)
    name = context(slug, "fax")
    instances = session.scalars(
        select(FaxInstance).where(FaxInstance.pbx_id == pbx.id).order_by(FaxInstance.selection)
    ).all()
    out = ["", "; Fax instances: their selections receive faxes.", f"[{name}]"]
    for instance in instances:
        if not instance.enabled:
            continue  # a disabled instance's number is not a fax any more
        out += [
            f"; {gate.comment(instance.name)}",
            f"exten => {gate.extension(instance.selection)},1,Set({FAX_INSTANCE}={int(instance.id)})",
            f" same => n,Set({FAX_REACHED}=${{EXTEN}})",
            " same => n,Goto(kalliope-fax-in,s,1)",
        ]
    return DialplanFragment([name], out)
