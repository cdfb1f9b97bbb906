"""The hotel feature: rooms, check-in/out, cleaning codes, outbound classes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kalliope_tel.features.base import DialplanFragment, Feature, Job, PageLink, ServeContext, Visitor
from kalliope_tel.features.registry import partner_runs
from kalliope_tel.tenancy.models import Pbx

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kalliope_tel.asterisk.agi.server import AgiRouter
    from kalliope_tel.checks import Check
    from kalliope_tel.container import Container


def _agi(router: AgiRouter, container: Container) -> None:
    from kalliope_tel.agi import hotel

    hotel.register(router, container)


def _jobs(ctx: ServeContext) -> list[Job]:
    from kalliope_tel.hotel.jobs import nightly_reset_loop

    interval = ctx.container.settings.scheduler_interval_seconds
    # Database work only: one job per node, whatever the Asterisks.
    return [Job("hotel-nightly", lambda: nightly_reset_loop(ctx.container, ctx.node, interval))]


def _dialplan(session: Session, pbx: Pbx, device_template: str) -> DialplanFragment:
    from kalliope_tel.dialplan.hotel import dialplan_fragment

    return dialplan_fragment(session, pbx, device_template)


def _doctor(container: Container) -> list[Check]:
    """A PBX with rooms needs outbound classes, or its rooms can call nobody."""
    from sqlalchemy import func, select

    from kalliope_tel.checks import Check
    from kalliope_tel.db.engine import transaction
    from kalliope_tel.extensions.accounts import list_classes
    from kalliope_tel.hotel.models import Room
    from kalliope_tel.tenancy.services import list_pbxs

    missing = []
    with transaction(container.sessions) as session:
        for pbx in list_pbxs(session):
            rooms = session.scalar(select(func.count()).select_from(Room).where(Room.pbx_id == pbx.id)) or 0
            if rooms and not list_classes(session, pbx):
                missing.append(pbx.slug)
    if missing:
        return [
            Check(
                "hotel",
                False,
                f"PBX(s) {', '.join(missing)} have rooms but no outbound classes",
                "run 'kalliope-tel hotel --pbx SLUG classes init --trunk-context YOUR-TRUNK'",
            )
        ]
    return [Check("hotel", True, "every PBX with rooms has outbound classes")]


def _pages(session: Session, visitor: Visitor) -> list[PageLink]:
    pbx = session.get(Pbx, visitor.pbx_id)
    if pbx is None or not pbx.hotel_enabled:
        return []
    pages = (
        [PageLink("panel", "nav.panel", 10), PageLink("stays", "nav.stays", 15)] if visitor.may("receptionist") else []
    )
    if visitor.may("admin"):
        pages += [
            PageLink("admin/rooms", "nav.rooms", 89, "group.hotel", "about.rooms"),
            PageLink("admin/templates", "nav.templates", 89.2, "group.hotel", "about.templates"),
            PageLink("admin/classes", "nav.classes", 89.4, "group.hotel", "about.classes"),
            PageLink("admin/hotel", "nav.hotel_settings", 89.6, "group.hotel", "about.hotel_settings"),
        ]
    return pages


FEATURE = Feature(
    name="hotel",
    summary="Rooms, check-in/out, cleaning codes, room-to-room blocking, outbound classes",
    agi=_agi,
    jobs=_jobs,
    dialplan=_dialplan,
    doctor=_doctor,
    cli=("hotel", "kalliope_tel.cli.hotel_cmd:app"),
    web="kalliope_tel.hotel.web:router",
    pages=_pages,
    uses=("billing", "wakeup"),
    # The directory publishes rooms by the hotel's rules (room names; guests' only where allowed).
    provides={
        "directory_rooms": "kalliope_tel.hotel.directory:rooms",
        "directory_tokens": "kalliope_tel.hotel.directory:tokens",
        # The PMS link (FIAS) checks guests in and out with the receptionist's own rules.
        **{
            name: f"kalliope_tel.hotel.for_pms:{name}"
            for name in (
                "occupant",
                "occupied_since",
                "check_in",
                "check_out",
                "guest_change",
                "room_move",
                "set_outbound",
                "cleaning_after",
                "last_cleaning",
            )
        },
    },
    # The receptionist panels' live updates under load ("bench web": its name since it began).
    benches={"web": "kalliope_tel.hotel.panel_bench:bench_command"},
)


def billing_runs(container: Container) -> bool:
    """The stays' call costs and reports are billing's: shown when it runs."""
    return partner_runs(container, FEATURE, "billing")
