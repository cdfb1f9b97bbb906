"""The wake-up feature: alarms, the scheduler, the Stasis call flow."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kalliope_tel.features.base import (
    AsteriskLink,
    DialplanFragment,
    Feature,
    Job,
    PageLink,
    ServeContext,
    Visitor,
    drain_app,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kalliope_tel.asterisk.ari.runtime import StasisApplication
    from kalliope_tel.tenancy.models import Pbx

APP = "wakeup"


def _stasis(ctx: ServeContext, link: AsteriskLink) -> dict[str, StasisApplication]:
    from kalliope_tel.ari_apps.wakeup import WakeupApplication

    return {APP: WakeupApplication(link.runtime, ctx.container, originate_app=link.node_app)}


def _jobs(ctx: ServeContext) -> list[Job]:
    from kalliope_tel.wakeup.scheduler import WakeupScheduler

    jobs = []
    tick = min(ctx.container.settings.scheduler_interval_seconds, 1.0)
    for link in ctx.links:
        app = link.apps[APP]
        # Each Asterisk's scheduler claims only the alarms of PBXs bound to it.
        scheduler = WakeupScheduler(ctx.container, app, ctx.node, tick=tick, asterisk=link.name)
        app.on_line_free = scheduler.poke
        ctx.parts[f"wakeup-scheduler@{link.label}"] = scheduler
        connected = link.client.connected
        jobs.append(Job(f"wakeup@{link.label}", lambda s=scheduler, c=connected: s.run(c)))  # type: ignore[misc]
    ctx.status["wakeup_calls"] = lambda: sum(link.apps[APP].active for link in ctx.links)
    return jobs


async def _drain(ctx: ServeContext, grace: float) -> None:
    await drain_app(ctx, APP, grace, lambda app: app.active)


def _dialplan(session: Session, pbx: Pbx, device_template: str) -> DialplanFragment:
    from kalliope_tel.dialplan.wakeup import dialplan_fragment

    return dialplan_fragment(session, pbx, device_template)


def _pages(_session: Session, visitor: Visitor) -> list[PageLink]:
    if not visitor.may("admin"):
        return []
    return [
        PageLink("admin/wakeup", "nav.wakeup_settings", 89.8, "group.hotel", "about.wakeup_settings"),
        PageLink("admin/wakeup-daily", "nav.wakeup_daily", 89.9, "group.hotel", "about.wakeup_daily"),
    ]


FEATURE = Feature(
    name="wakeup",
    summary="Wake-up calls confirmed with DTMF 1 and 9, retries and alerts",
    stasis=_stasis,
    jobs=_jobs,
    drain=_drain,
    dialplan=_dialplan,
    cli=("wakeup", "kalliope_tel.cli.wakeup_cmd:app"),
    web="kalliope_tel.wakeup.web:router",
    pages=_pages,
    benches={"wakeup": "kalliope_tel.cli.bench_cmd:wakeup"},
    provides={
        "set_alarm": "kalliope_tel.wakeup.services:set_alarm",
        "panel_alarms": "kalliope_tel.wakeup.for_hotel:panel_alarms",
        "cancel_room_alarms": "kalliope_tel.wakeup.for_hotel:cancel_room_alarms",
        "cancel_alarms_at": "kalliope_tel.wakeup.for_pms:cancel_alarms_at",
        "alarm_outcomes": "kalliope_tel.wakeup.for_pms:alarm_outcomes",
    },
)
