"""What doctor says about Mail2Fax: boxes that fail to log in, and instances
set up so that every request would be refused."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.fax.models import FaxInstance, Mail2FaxAuth, Mail2FaxEncryption
from kalliope_tel.mail2fax.models import Mail2FaxBox
from kalliope_tel.tenancy.models import Pbx


@dataclass(frozen=True)
class Problem:
    text: str
    fix: str


def box_problems(session: Session) -> tuple[list[Problem], int]:
    problems = []
    boxes = session.scalars(select(Mail2FaxBox).order_by(Mail2FaxBox.pbx_id, Mail2FaxBox.name)).all()
    slugs = {p.id: p.slug for p in session.scalars(select(Pbx))}
    by_name = {(b.pbx_id, b.name): b for b in boxes}
    for box in boxes:
        where = f"box {box.name} ({slugs.get(box.pbx_id)})"
        if box.enabled and box.last_error:
            problems.append(Problem(f"{where}: {box.last_error[:200]}", f"kalliope-tel fax boxes test {box.name}"))
    for instance in session.scalars(select(FaxInstance).where(FaxInstance.mail2fax_box != "")):
        where = f"fax instance {instance.name} ({slugs.get(instance.pbx_id)})"
        if instance.mail2fax_auth is Mail2FaxAuth.PIN and not instance.mail2fax_pin:
            problems.append(
                Problem(f"{where}: PIN authentication without a PIN", "fax instances update --mail2fax-pin-stdin")
            )
        linked = by_name.get((instance.pbx_id, instance.mail2fax_box))
        if instance.mail2fax_auth is Mail2FaxAuth.NONE and linked is not None and not linked.trusted_authserv_id:
            problems.append(
                Problem(
                    f"{where}: requests proven by the sender's address alone, but box {linked.name} trusts no "
                    "receiving server's Authentication-Results: every request is refused",
                    f"fax boxes update {linked.name} --trusted-authserv-id MX-HOST-NAME",
                )
            )
        if instance.mail2fax_encryption is Mail2FaxEncryption.PGP and linked is not None and not linked.pgp_fingerprint:
            problems.append(
                Problem(
                    f"{where}: encrypted requests, but box {linked.name} has no PGP key",
                    "fax boxes update --pgp-key FILE",
                )
            )
    return problems, len(boxes)
