"""The LAM feature: meeting rooms, invitations, links and the phone dial-in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kalliope_tel.checks import Check
from kalliope_tel.features.base import DialplanFragment, Feature, Job, PageLink, ServeContext, Visitor

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kalliope_tel.asterisk.agi.server import AgiRouter
    from kalliope_tel.container import Container
    from kalliope_tel.tenancy.models import Pbx


def _agi(router: AgiRouter, container: Container) -> None:
    from kalliope_tel.agi import lam

    lam.register(router, container)


def _jobs(ctx: ServeContext) -> list[Job]:
    from kalliope_tel.lam.sender import sender_loop

    tick = min(ctx.container.settings.fax_tick_seconds, 2.0)
    return [Job("lam-invitations", lambda: sender_loop(ctx.container, ctx.node, tick))]


def _dialplan(session: Session, pbx: Pbx, device_template: str) -> DialplanFragment:
    from kalliope_tel.dialplan.lam import dialplan_fragment

    return dialplan_fragment(session, pbx, device_template)


def _doctor(container: Container) -> list[Check]:
    settings = container.settings
    if not settings.lam_jitsi_url:
        return [Check("lam", True, "no Jitsi site set (lam_jitsi_url): meetings have dial-in only, no links")]
    if len(settings.lam_jitsi_secret.get_secret_value().encode()) < 32:
        return [
            Check(
                "lam",
                False,
                "the Jitsi token secret is missing or shorter than 32 bytes (HS256 tokens could be guessed)",
                "set KALLIOPE_LAM_JITSI_SECRET to the secret of the Jitsi site's token authentication",
            )
        ]
    return [Check("lam", True, f"meeting links on {settings.lam_jitsi_url}")]


def _pages(session: Session, visitor: Visitor) -> list[PageLink]:
    """The meetings page: for LAM managers and administrators, and for the owners of a room."""
    from kalliope_tel.lam.services import owns_a_room

    pages = []
    if visitor.may("lam") or owns_a_room(session, visitor.pbx_id, visitor.user_id):
        pages.append(PageLink("lam", "nav.lam", 30))
    if visitor.may("admin"):
        pages.append(PageLink("admin/lam", "nav.lam_admin", 95, "group.lam", "about.lam_admin"))
    return pages


FEATURE = Feature(
    name="lam",
    summary="LAM meeting rooms: calendar, invitations with iCalendar, meeting links, phone dial-in",
    agi=_agi,
    jobs=_jobs,
    dialplan=_dialplan,
    doctor=_doctor,
    cli=("lam", "kalliope_tel.cli.lam_cmd:app"),
    web="kalliope_tel.lam.web:router",
    pages=_pages,
    provides={
        "open_personal_room": "kalliope_tel.lam.personal:open_room",
        "close_personal_room": "kalliope_tel.lam.personal:close_room",
        "personal_rooms": "kalliope_tel.lam.personal:details",
    },
)
