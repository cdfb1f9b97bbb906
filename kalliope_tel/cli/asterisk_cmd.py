"""``kalliope-tel asterisk render|apply``: the configuration kalliope-tel owns.

Each PBX's files go to the Asterisk it is bound to (``pbx add --asterisk``),
and only that Asterisk is reloaded.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from kalliope_tel.cli.context import STATE, console, print_json

if TYPE_CHECKING:
    from kalliope_tel.asterisk.endpoints import AsteriskEndpoints
    from kalliope_tel.asterisk.targets import ConfigTarget
    from kalliope_tel.tenancy.models import Pbx

app = typer.Typer(help="Generated Asterisk configuration (PJSIP accounts, rooms' dialplan).", no_args_is_help=True)


@dataclass
class Rendered:
    target: ConfigTarget
    endpoints: AsteriskEndpoints | None
    files: dict[str, str] = field(default_factory=dict)


def where(pbx: Pbx) -> tuple[ConfigTarget, AsteriskEndpoints | None]:
    """Where a PBX's files go, and how to reach its Asterisk (None when it
    cannot be resolved now: rendering works without it, reloading says why)."""
    from kalliope_tel.asterisk.endpoints import server_endpoints
    from kalliope_tel.asterisk.targets import config_target
    from kalliope_tel.errors import KalliopeError

    target = config_target(STATE.settings, pbx.asterisk_server)
    try:
        return target, server_endpoints(STATE.settings, pbx.asterisk_server)
    except KalliopeError:
        return target, None


def render_by_server(pbx_slug: str | None) -> list[Rendered]:
    """Every PBX's files (or one PBX's), grouped by the Asterisk it lives on."""
    from kalliope_tel.asterisk.outbound_conf import render_outbound
    from kalliope_tel.db.engine import transaction
    from kalliope_tel.dialplan.generator import render
    from kalliope_tel.tenancy.services import get_pbx, list_pbxs

    groups: dict[str, Rendered] = {}
    with transaction(STATE.container.sessions) as session:
        for pbx in [get_pbx(session, pbx_slug)] if pbx_slug else list_pbxs(session):
            group = groups.get(pbx.asterisk_name)
            if group is None:
                group = groups[pbx.asterisk_name] = Rendered(*where(pbx))
                # Per Asterisk: how it opens the shared app's ARI websockets.
                user = group.endpoints.ari_username if group.endpoints else STATE.settings.ari_username or "kalliope"
                group.files.update(render_outbound(STATE.settings, user, group.target.server))
            group.files.update(
                render(
                    session,
                    pbx,
                    group.target.device_template,
                    STATE.container.features,
                    STATE.container.settings.pjsip_accounts,
                ).files
            )
    return list(groups.values())


async def reload_through_ami(endpoints: AsteriskEndpoints | None, changed: list[str]) -> list[str]:
    from kalliope_tel.asterisk.ami.client import AmiClient
    from kalliope_tel.asterisk.apply import reload
    from kalliope_tel.errors import KalliopeError

    if endpoints is None:
        raise KalliopeError("files written, but this Asterisk cannot be reached to reload them (is it running?)")
    ami = AmiClient(endpoints.ami_host, endpoints.ami_port, endpoints.ami_username, endpoints.ami_password)
    await ami.connect()
    try:
        return await reload(ami, changed)
    finally:
        await ami.aclose()


@app.command("render")
def render_cmd(
    output: Path = typer.Option(..., "--output", "-o", help="Directory to write the files into."),
    pbx: str | None = typer.Option(None, "--pbx", help="Only this PBX (default: every PBX)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Write the generated files into a directory (for review, or your own deployment)."""
    from kalliope_tel.asterisk.apply import write_files

    files = {name: text for group in render_by_server(pbx) for name, text in group.files.items()}
    changed = write_files(output, files)
    if as_json:
        print_json({"directory": str(output), "changed": changed})
        return
    console.print(f"rendered into {output}: " + (", ".join(changed) if changed else "no change"), highlight=False)


@app.command("apply")
def apply_cmd(
    pbx: str | None = typer.Option(None, "--pbx", help="Only this PBX (default: every PBX)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Write the files where each Asterisk includes them and reload what changed through AMI."""
    from kalliope_tel.asterisk.apply import write_files

    report = []
    for group in render_by_server(pbx):
        directory = group.target.directory
        changed = write_files(directory, group.files)
        outputs = asyncio.run(reload_through_ami(group.endpoints, changed)) if changed else []
        report.append(
            {
                "asterisk": group.target.server or "default",
                "directory": str(directory),
                "changed": changed,
                "reloads": len(outputs),
            }
        )
        if as_json:
            continue
        if not changed:
            console.print(f"{directory}: up to date, nothing to reload", highlight=False)
        else:
            console.print(
                f"{directory}: wrote {', '.join(changed)}; reloaded ({len(outputs)} command(s))", highlight=False
            )
    if as_json:
        print_json(report)


@app.command("realtime-conf")
def realtime_conf_cmd(
    output: Path = typer.Option(..., "--output", "-o", help="Asterisk's configuration directory (or a review one)."),
    url: str = typer.Option("", "--url", help="How Asterisk reaches serve (default: http://<realtime_bind>)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Write sorcery.conf, extconfig.conf and res_curl.conf for pjsip_accounts = realtime (mode 0640; the
    password comes from the settings and is never printed)."""
    from kalliope_tel.asterisk.apply import write_files
    from kalliope_tel.asterisk.endpoints import realtime_listener
    from kalliope_tel.asterisk.realtime_conf import realtime_files

    bind, username, password = realtime_listener(STATE.settings)
    base = url or f"http://{bind}"
    changed = write_files(output, realtime_files(base, username, password))
    if as_json:
        print_json({"directory": str(output), "changed": changed, "url": base})
        return
    console.print(f"{output}: {', '.join(changed) or 'up to date'} (Asterisk asks {base})", highlight=False)
