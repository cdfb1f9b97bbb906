"""A hotel for the web tests: 6 rooms on 2 floors of 2 buildings, users with
each role, and a second PBX with a receptionist of its own."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.extensions import accounts as ext_accounts
from kalliope_tel.fax import config as fax_config
from kalliope_tel.hotel import services
from kalliope_tel.tenancy.services import create_pbx, get_pbx
from kalliope_tel.users import services as users
from kalliope_tel.users.models import Role

PASSWORD = "correct horse battery"
# extension -> (building, floor)
ROOMS = {
    "101": ("Main", "1"),
    "102": ("Main", "1"),
    "103": ("Main", "1"),
    "201": ("Main", "2"),
    "151": ("Annex", "1"),
    "251": ("Annex", "2"),
}


@dataclass(frozen=True)
class WebUser:
    pbx: str
    name: str
    email: str
    roles: tuple[Role, ...]


ADMIN = WebUser("default", "anna", "anna@hotel.test", (Role.ADMIN,))
RECEPTION = WebUser("default", "rita", "rita@hotel.test", (Role.RECEPTIONIST,))
FAX_USER = WebUser("default", "fabio", "fabio@hotel.test", (Role.FAX,))
LAM_USER = WebUser("default", "luca", "luca@hotel.test", (Role.LAM,))
NOBODY = WebUser("default", "nora", "nora@hotel.test", ())
OTHER_RECEPTION = WebUser("other", "otto", "otto@other.test", (Role.RECEPTIONIST,))
ALL_USERS = (ADMIN, RECEPTION, FAX_USER, LAM_USER, NOBODY, OTHER_RECEPTION)


def seed_web_hotel(
    session: Session, *, trunk_context: str = "kt-lab-pstn", accounts: int = 0, **template: object
) -> None:
    """The hotel, its users, and fax line 'office' (700) that fabio may use."""
    pbx = get_pbx(session)
    services.ensure_default_classes(session, pbx, trunk_context)
    services.create_template(session, pbx, "std", **template)
    for extension, (building, floor) in ROOMS.items():
        services.create_room(
            session, pbx, extension, f"Room {extension}", "std", new_accounts=accounts,
            organization=building, organizational_unit=floor,
        )  # fmt: skip
    other = create_pbx(session, "other", "Other Hotel")
    services.ensure_default_classes(session, other, trunk_context)
    services.create_template(session, other, "std")
    services.create_room(session, other, "101", "Other 101", "std", organization="Other", organizational_unit="1")
    for user in ALL_USERS:
        owner = get_pbx(session, user.pbx)
        users.add_user(session, owner, user.name, user.email, user.name.title())
        users.set_password(session, owner, user.name, PASSWORD)
        users.set_roles(session, owner, user.name, set(user.roles))
    fax_config.update_settings(session, pbx, serial_number="KPBX40299998")
    ext_accounts.create_class(session, pbx, "faxnet", ["_5XX", "_6XX"], "kt-lab-faxnet")
    fax_config.add_instance(session, pbx, "office", "700", outbound_class="faxnet", local_ident="KT HOTEL")
    fax_config.set_permission(session, pbx, "office", FAX_USER.name, "both")


def write_pdf(path: Path, pages: int = 1) -> Path:
    """A real PDF of ``pages`` fax-like pages."""
    from tests.fax_support import make_pages

    images = [image.convert("L") for image in make_pages(pages)]
    images[0].save(path, "PDF", resolution=200, save_all=True, append_images=images[1:])
    return path


def seed_received_fax(session: Session, data_dir: Path, pages: int = 1) -> int:
    """A fax received on 'office', its PDF stored as a reception's is; returns its id."""
    from datetime import timedelta

    from kalliope_tel.db.base import utcnow
    from kalliope_tel.fax.inbound import Reception, record_received
    from kalliope_tel.fax.models import FaxInstance, Media

    pbx = get_pbx(session)
    instance = session.scalars(select(FaxInstance).where(FaxInstance.pbx_id == pbx.id)).one()
    pdf = write_pdf(data_dir / f"seed-{uuid.uuid4().hex[:6]}.pdf", pages)
    now = utcnow()
    reception = Reception(
        call_id=f"seed-{uuid.uuid4().hex[:8]}", calling="0612345678", reached="700",
        started_at=now - timedelta(minutes=1), ended_at=now, ok=True, reason="", pages=pages,
        bit_rate=14400, ecm=True, remote_ident="SENDER", media=Media.ENGINE,
    )  # fmt: skip
    return record_received(session, pbx, instance.id, None, reception, pdf, data_dir).id
