"""``kalliope-tel wakeup``: the alarm clock service."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import typer

from kalliope_tel.cli.context import STATE, console, print_json, print_table, run_in_pbx
from kalliope_tel.errors import KalliopeError
from kalliope_tel.localtime import parse_local_time

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kalliope_tel.tenancy.models import Pbx
    from kalliope_tel.wakeup import services, timeline
else:
    from kalliope_tel.lazy import LazyModule

    services = LazyModule("kalliope_tel.wakeup.services")

app = typer.Typer(help="Wake-up calls: settings, alarms, alerts, timelines.", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Machine-readable output.")


@app.callback()
def wakeup_main(pbx: str = typer.Option(None, "--pbx", help="PBX slug (default: the default PBX).")) -> None:
    STATE.pbx_slug = pbx


run = run_in_pbx


@app.command("settings")
def settings_cmd(
    enabled: bool | None = typer.Option(None, "--enabled/--disabled"),
    name: str | None = typer.Option(None, help="Caller-ID name of wake-up calls."),
    number: str | None = typer.Option(None, help="Caller-ID number of wake-up calls."),
    message: str | None = typer.Option(None, help="Sound played on answer (e.g. custom/wakeup)."),
    attempts: int | None = typer.Option(None, help="Call attempts per alarm (1-10)."),
    ring_timeout: int | None = typer.Option(None, help="Seconds each attempt rings."),
    interval: int | None = typer.Option(None, help="Seconds between attempts."),
    confirm_answer: bool | None = typer.Option(
        None, "--confirm-answer/--no-confirm-answer", help="Press 1 before the message."
    ),
    confirm_listen: bool | None = typer.Option(
        None, "--confirm-listen/--no-confirm-listen", help="Press 9 after the message."
    ),
    digit_timeout: int | None = typer.Option(None, help="Seconds to wait for 1 or 9."),
    max_concurrent: int | None = typer.Option(None, help="Simultaneous wake-up calls at most."),
    as_json: bool = JSON,
) -> None:
    """Show the alarm clock settings, changing those given."""
    values = {k: v for k, v in locals().items() if k != "as_json"}

    def work(session: Session, pbx: Pbx) -> dict[str, Any]:
        s = services.update_settings(session, pbx, **values)
        return {k: getattr(s, k) for k in values}

    data = run(work)
    if as_json:
        print_json(data)
    else:
        print_table("wake-up settings", ["setting", "value"], [[k, v] for k, v in data.items()])


@app.command("set")
def set_cmd(
    room: str = typer.Argument(..., help="Room extension."),
    at: str = typer.Argument(..., help="'YYYY-MM-DD HH:MM' (or 'HH:MM' with --daily) in the PBX's time zone."),
    daily_until: str | None = typer.Option(None, "--daily-until", help="Repeat daily until this date (YYYY-MM-DD)."),
    attempts: int | None = typer.Option(None, help="Call attempts for this alarm (default: the settings')."),
    as_json: bool = JSON,
) -> None:
    """Set an alarm for a room (or a daily series)."""

    def work(session: Session, pbx: Pbx) -> list[int]:
        if daily_until:
            first = parse_daily_start(at, pbx.timezone)
            alarms = services.set_daily(
                session, pbx, room, first.time(), first.date(), parse_date(daily_until), attempts=attempts
            )
            return [a.id for a in alarms]
        return [services.set_alarm(session, pbx, room, parse_local_time(at, pbx.timezone), attempts=attempts).id]

    ids = run(work)
    if as_json:
        print_json(ids)
    else:
        console.print(f"alarm(s) {', '.join(map(str, ids))} set for room {room}", highlight=False)


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise KalliopeError(f"{text!r}: use 'YYYY-MM-DD'") from None


def parse_daily_start(text: str, tz: str) -> datetime:
    """The first alarm of a daily series: 'YYYY-MM-DD HH:MM', or 'HH:MM' for
    the next time that clock time comes (today if still ahead, else tomorrow)."""
    try:
        clock = time.fromisoformat(text)
    except ValueError:
        return parse_local_time(text, tz)
    now = datetime.now(ZoneInfo(tz))
    first = datetime.combine(now.date(), clock, ZoneInfo(tz))
    return first if first > now else first + timedelta(days=1)


@app.command("change")
def change_cmd(alarm: int, at: str, as_json: bool = JSON) -> None:
    """Move a scheduled alarm to another time."""
    run(lambda s, p: services.change_alarm(s, p, alarm, parse_local_time(at, p.timezone)))
    if as_json:
        print_json({"alarm": alarm, "at": at})
    else:
        console.print(f"alarm {alarm} moved to {at}")


def _show(rows: list[Any], as_json: bool, title: str) -> None:
    data = [dataclasses.asdict(r) for r in rows]
    if as_json:
        print_json(data)
        return
    print_table(
        title,
        ["id", "room", "due", "state", "attempts", "next attempt"],
        [
            [
                d["id"],
                d["room"],
                d["due_at"][:16],
                d["state"],
                f"{d['attempts_made']}/{d['attempts']}",
                (d["next_attempt_at"] or "")[:19],
            ]
            for d in data
        ],
    )


@app.command("list")
def list_cmd(
    finished: bool = typer.Option(False, "--finished", help="Confirmed, or acknowledged alarms."),
    room: str | None = typer.Option(None),
    as_json: bool = JSON,
) -> None:
    """Active alarms (future, in progress, unanswered); --finished for the others."""
    if finished:
        _show(run(lambda s, p: services.list_finished(s, p, room)), as_json, "finished wake-up calls")
    else:
        _show(run(lambda s, p: services.list_active(s, p, room)), as_json, "wake-up calls")


@app.command("cancel")
def cancel_cmd(
    alarm: int,
    series: bool = typer.Option(False, "--series", help="Cancel the whole daily series."),
    as_json: bool = JSON,
) -> None:
    count = run(lambda s, p: services.cancel_alarm(s, p, alarm, series=series))
    if as_json:
        print_json({"alarm": alarm, "cancelled": count})
    else:
        console.print(f"{count} alarm(s) cancelled")


@app.command("alerts")
def alerts_cmd(as_json: bool = JSON) -> None:
    """Unacknowledged "no answer" alerts."""
    _show(run(services.alerts), as_json, "no-answer alerts")


@app.command("ack")
def ack_cmd(alarm: int, by: str = typer.Option("", help="Who took care of it."), as_json: bool = JSON) -> None:
    """Acknowledge a no-answer alert (the alarm moves to the finished list)."""
    run(lambda s, p: services.acknowledge(s, p, alarm, by))
    if as_json:
        print_json({"alarm": alarm, "acknowledged": True, "by": by})
    else:
        console.print(f"alarm {alarm} acknowledged")


@app.command("timeline")
def timeline_cmd(alarm: int, as_json: bool = JSON) -> None:
    """Every attempt of an alarm and its events, with timestamps."""
    data = run(lambda s, p: timeline.timeline(s, p, alarm))
    if as_json:
        print_json(data)
        return
    console.print(f"alarm {data['alarm']}: {data['state']} (due {data['due_at']})", highlight=False)
    for attempt in data["attempts"]:
        console.print(
            f"  attempt {attempt['number']}: {attempt['outcome'] or 'in progress'} {attempt['cause']}", highlight=False
        )
        for e in attempt["events"]:
            console.print(f"    {e['at'][11:23]}  {e['kind']:<18} {e['detail']}", highlight=False)
