"""``kalliope-tel asterisk render|apply``: the configuration kalliope-tel owns."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from kalliope_tel.cli.context import STATE, console
from kalliope_tel.errors import KalliopeError
from kalliope_tel.lab.instance import LabInstance

app = typer.Typer(help="Generated Asterisk configuration (PJSIP accounts, rooms' dialplan).", no_args_is_help=True)


def _target() -> tuple[Path, str]:
    """Where the files go and how rooms' devices are dialled."""
    from dialplan.generator import LAB_DEVICE, PRODUCTION_DEVICE

    settings = STATE.settings
    using_lab = not settings.ari_url
    directory = settings.asterisk_config_dir
    if directory is None:
        if not using_lab:
            raise KalliopeError("set asterisk_config_dir (KALLIOPE_ASTERISK_CONFIG_DIR), e.g. /etc/asterisk")
        directory = LabInstance(settings.lab_root, settings.lab_name).dir / "etc"
    device = settings.asterisk_device_template or (LAB_DEVICE if using_lab else PRODUCTION_DEVICE)
    return directory, device


def _render(pbx_slug: str | None) -> dict[str, str]:
    from dialplan.generator import render
    from kalliope_tel.db.engine import transaction
    from kalliope_tel.tenancy.services import get_pbx

    _, device = _target()
    with transaction(STATE.container.sessions) as session:
        return render(session, get_pbx(session, pbx_slug), device).files


@app.command("render")
def render_cmd(
    output: Path = typer.Option(..., "--output", "-o", help="Directory to write the files into."),
    pbx: str | None = typer.Option(None, "--pbx"),
) -> None:
    """Write the generated files into a directory (for review, or your own deployment)."""
    from kalliope_tel.asterisk.apply import write_files

    changed = write_files(output, _render(pbx))
    console.print(f"rendered into {output}: " + (", ".join(changed) if changed else "no change"), highlight=False)


@app.command("apply")
def apply_cmd(pbx: str | None = typer.Option(None, "--pbx")) -> None:
    """Write the files where Asterisk includes them and reload what changed through AMI."""
    from kalliope_tel.asterisk.apply import reload, write_files

    directory, _ = _target()
    changed = write_files(directory, _render(pbx))
    if not changed:
        console.print(f"{directory}: up to date, nothing to reload", highlight=False)
        return

    async def do_reload() -> list[str]:
        ami = STATE.container.ami_client()
        await ami.connect()
        try:
            return await reload(ami, changed)
        finally:
            await ami.aclose()

    outputs = asyncio.run(do_reload())
    console.print(f"{directory}: wrote {', '.join(changed)}; reloaded ({len(outputs)} command(s))", highlight=False)
