"""``kalliope-tel pms settings|status|resync|postings``: a PBX's FIAS link
to its hotel PMS, how each link is doing, a resync asked of the PMS, and
what is owed to it (and a refused posting sent again)."""

from __future__ import annotations

from typing import Any

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.cli.context import STATE, done, fail, print_json, print_table, run_in_pbx
from kalliope_tel.tenancy.models import Pbx

app = typer.Typer(help="The hotel PMS link (FIAS).", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Machine-readable output.")


@app.callback()
def pms_main(pbx: str = typer.Option(None, "--pbx", help="PBX slug (default: the default PBX).")) -> None:
    STATE.pbx_slug = pbx


def _on_off(value: str | None) -> bool | None:
    if value is None:
        return None
    if value not in ("on", "off"):
        raise fail(f"expected on or off, got {value!r}")
    return value == "on"


@app.command("settings")
def settings(
    enabled: str = typer.Option(None, "--enabled", help="on or off."),
    mode: str = typer.Option(None, "--mode", help="connect (to the PMS) or listen (the PMS connects)."),
    host: str = typer.Option(None, "--host", help="The PMS's address (connect) or the address to listen on."),
    port: int = typer.Option(None, "--port", help="TCP port."),
    postings: str = typer.Option(None, "--postings", help="Post call charges: on or off."),
    room_status: str = typer.Option(None, "--room-status", help="Send cleaning changes as room status: on or off."),
    class_map: list[str] = typer.Option([], "--class", help="CS=standard|restricted, repeatable (replaces the map)."),
    as_json: bool = JSON,
) -> None:
    """Show, or change, the PBX's PMS link."""
    from kalliope_tel.errors import KalliopeError
    from kalliope_tel.features.registry import partner_function, partner_runs
    from kalliope_tel.pms import settings as pms_settings
    from kalliope_tel.pms.feature import FEATURE
    from kalliope_tel.pms.owed import link_of

    mapping = None
    if class_map:
        pairs = [item.partition("=") for item in class_map]
        if any(not sep for _, sep, _ in pairs):
            raise fail("--class wants CS=standard or CS=restricted")
        mapping = {code.strip(): kind.strip() for code, _, kind in pairs}
    values = {"enabled": _on_off(enabled), "mode": mode, "host": host, "port": port, "postings": _on_off(postings),
              "room_status": _on_off(room_status), "class_map": mapping}  # fmt: skip
    if mode is not None and mode not in ("connect", "listen"):
        raise fail("--mode is connect or listen")

    def work(session: Session, pbx: Pbx) -> dict[str, Any]:
        if all(v is None for v in values.values()):
            return pms_settings.view(link_of(session, pbx.id))
        hotel = partner_runs(STATE.container, FEATURE, "hotel")
        newest = partner_function(FEATURE, "hotel", "last_cleaning")(session, pbx) if hotel else 0
        return pms_settings.view(pms_settings.update(session, pbx, values, newest))

    try:
        shown = run_in_pbx(work)
    except KalliopeError as exc:
        raise fail(str(exc)) from None
    if as_json:
        print_json(shown)
    else:
        print_table("PMS link", ["setting", "value"], [[k, v] for k, v in shown.items()])


@app.command("status")
def status(as_json: bool = JSON) -> None:
    """Every PBX's link: state, holder, last record, messages owed."""
    from kalliope_tel.pms.status import rows

    found = rows(STATE.container)
    if as_json:
        print_json(found)
        return
    table = [[r["pbx"], "on" if r["enabled"] else "off", r["peer"], r["state"], r["holder"] or "-",
              r["last_record"][:40] or "-", r["messages"]["owed"] + r["messages"]["sent"],
              r["messages"]["refused"]] for r in found]  # fmt: skip
    print_table("PMS links", ["pbx", "enabled", "peer", "state", "holder", "last record", "owed", "refused"], table)


@app.command("resync")
def resync(as_json: bool = JSON) -> None:
    """Ask the PMS for its guest database again (the link holder sends DR)."""
    from kalliope_tel.pms.owed import link_of

    def work(session: Session, pbx: Pbx) -> bool:
        link = link_of(session, pbx.id)
        if link is None or not link.enabled:
            raise fail(f"PBX {pbx.slug} has no PMS link enabled")
        link.resync_wanted = True
        return True

    run_in_pbx(work)
    done("resync asked: the node holding the link sends it to the PMS", {"resync_wanted": True}, as_json)


@app.command("postings")
def postings(
    refused: bool = typer.Option(False, "--refused", help="Only what the PMS refused."),
    retry: int = typer.Option(None, "--retry", help="Send this refused message again (its id)."),
    limit: int = typer.Option(50, "--limit", min=1, max=10000),
    as_json: bool = JSON,
) -> None:
    """What is owed to the PMS, and what it answered (newest first)."""
    from kalliope_tel.pms.models import Owed, PmsMessage
    from kalliope_tel.pms.owed import retry_refused

    def work(session: Session, pbx: Pbx) -> list[dict[str, Any]]:
        if retry is not None and not retry_refused(session, pbx.id, retry):
            raise fail(f"no refused message {retry} in PBX {pbx.slug}")
        query = select(PmsMessage).where(PmsMessage.pbx_id == pbx.id)
        if refused:
            query = query.where(PmsMessage.state == Owed.REFUSED)
        messages = session.scalars(query.order_by(PmsMessage.id.desc()).limit(limit))
        return [_message_row(m) for m in messages]

    found = run_in_pbx(work)
    if as_json:
        print_json(found)
        return
    rows = [[m["id"], m["kind"], m["room"], m["state"], m["tries"], m["fields"].get("TA", ""), m["answer"]]
            for m in found]  # fmt: skip
    print_table("Owed to the PMS", ["P#", "kind", "room", "state", "tries", "amount (cents)", "answer"], rows)


def _message_row(m: Any) -> dict[str, Any]:
    return {"id": m.id, "kind": m.kind.value, "room": m.room, "state": m.state.value, "tries": m.tries,
            "fields": m.fields, "answer": m.answer, "created_at": m.created_at.isoformat(),
            "sent_by": m.sent_by}  # fmt: skip
