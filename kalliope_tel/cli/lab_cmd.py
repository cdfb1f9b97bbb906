from __future__ import annotations

import asyncio

import typer

from kalliope_tel.cli.context import STATE, console, err_console, print_json
from kalliope_tel.lab.instance import REQUIRED_MODULES, LabInstance

app = typer.Typer(help="The lab Asterisk 22 (chroot, loopback, free ports).", no_args_is_help=True)


def _lab(name: str | None) -> LabInstance:
    return LabInstance(STATE.settings.lab_root, name or STATE.settings.lab_name)


NAME = typer.Option(None, "--name", help="Lab instance name (default: lab_name setting).")


@app.command("up")
def up(name: str | None = NAME, as_json: bool = typer.Option(False, "--json")) -> None:
    """Build the chroot once (cached), render asterisk-conf/ and start Asterisk."""
    lab = _lab(name)
    with err_console.status("starting the lab Asterisk (first run builds the chroot: about a minute)"):
        state = lab.start()
    if as_json:  # the lab's passwords stay in its state file, not on stdout
        print_json(
            {
                "name": state.name,
                "pid": state.pid,
                "ari_url": state.ari_url,
                "ami_url": state.ami_url,
                "agi_bind": state.agi_bind,
                "sip_port": state.sip_port,
                "files": str(lab.dir),
            }
        )
        return
    console.print(f"lab {state.name}: Asterisk running, pid {state.pid}", highlight=False)
    console.print(f"  ARI      {state.ari_url}  (user {state.ari_username})", highlight=False)
    console.print(f"  AMI      {state.ami_url}  (user {state.ami_username})", highlight=False)
    console.print(
        f"  FastAGI  dialplan calls agi://{state.agi_bind} (kalliope-tel serve listens there)",
        highlight=False,
    )
    console.print(
        f"  SIP      udp 127.0.0.1:{state.sip_port}, RTP {state.rtp_start}-{state.rtp_end}",
        highlight=False,
    )
    console.print(f"  files    {lab.dir}", highlight=False)


@app.command("down")
def down(
    name: str | None = NAME,
    purge: bool = typer.Option(False, "--purge", help="Also delete the instance's files and logs."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Stop the lab Asterisk by its own pid."""
    lab = _lab(name)
    was_running = lab.stop()
    if purge:
        lab.purge()
    if as_json:
        print_json({"name": lab.name, "stopped": was_running, "purged": purge})
        return
    console.print(f"lab {lab.name}: " + ("stopped" if was_running else "was not running"), highlight=False)


@app.command("status")
def status(name: str | None = NAME, as_json: bool = typer.Option(False, "--json")) -> None:
    """Is the lab running, which Asterisk, which key modules are loaded."""
    lab = _lab(name)
    st = lab.status()
    wanted = {m.name: m for m in st.modules if m.name in REQUIRED_MODULES}
    if as_json:
        print_json(
            {
                "name": lab.name,
                "running": st.running,
                "version": st.version,
                "pid": st.state.pid if st.state and st.running else None,
                "ari_url": st.state.ari_url if st.state else None,
                "ami_url": st.state.ami_url if st.state else None,
                "modules": {m: (m in wanted and wanted[m].running) for m in REQUIRED_MODULES},
                "modules_loaded": len(st.modules),
            }
        )
    elif not st.running:
        console.print(f"lab {lab.name}: not running ('kalliope-tel lab up' starts it)", highlight=False)
    else:
        assert st.state is not None
        console.print(f"lab {lab.name}: running, pid {st.state.pid}", highlight=False)
        console.print(f"  {st.version}", highlight=False)
        console.print(f"  ARI {st.state.ari_url}   AMI {st.state.ami_url}", highlight=False)
        for mod in REQUIRED_MODULES:
            ok = mod in wanted and wanted[mod].running
            mark = "[green]Running[/green]" if ok else "[red]not loaded[/red]"
            console.print(f"  {mod:<22} {mark}", highlight=False, markup=True)
        console.print(f"  ({len(st.modules)} modules loaded)", highlight=False)
    if not st.running or st.missing_modules:
        raise typer.Exit(1)


@app.command("cli")
def cli(command: str, name: str | None = NAME, as_json: bool = typer.Option(False, "--json")) -> None:
    """Run one Asterisk CLI command in the lab (e.g. 'pjsip show endpoints')."""
    output = _lab(name).cli(command)
    if as_json:
        print_json({"command": command, "output": output})
    else:
        console.print(output, highlight=False, markup=False)


@app.command("dial")
def dial(
    number: str = typer.Argument(..., help="What the phone dials, e.g. 600 or '*331'."),
    caller: str = typer.Option(..., "--from", help="The extension that dials (or the caller id of an outside call)."),
    origin: str = typer.Option("internal", "--origin", help="internal (a phone) or external (from a trunk)."),
    digits: str = typer.Option("", "--digits", help="DTMF to press once answered."),
    ring_timeout: int = typer.Option(20, "--ring-timeout", help="Seconds to ring before giving up."),
    max_duration: float = typer.Option(30.0, "--max-duration", help="Hang up after this many seconds."),
    pbx: str = typer.Option("", "--pbx", help="The PBX whose phone dials (default: the default PBX)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Call from a lab phone as if extension --from had dialled NUMBER; print what happened.

    Returns within --max-duration plus a few seconds whatever happens, also
    when Asterisk dies during the call."""
    from kalliope_tel.asterisk import confgate
    from kalliope_tel.errors import KalliopeError
    from kalliope_tel.lab.dial import lab_dial

    if origin not in ("internal", "external"):
        raise KalliopeError(f"--origin {origin!r}: internal or external")
    client = STATE.container.ari_client(apps=["kt-lab-dial"])
    report = asyncio.run(
        lab_dial(
            client,
            caller,
            number,
            digits=digits,
            ring_timeout=ring_timeout,
            max_duration=max_duration,
            origin=origin,
            variables={"KT_LAB_PBX": confgate.slug(pbx)} if pbx else None,
        )
    )
    if as_json:
        print_json(report.as_dict())
        return
    console.print(
        f"{caller} -> {number}: " + ("answered" if report.answered else "not answered"),
        highlight=False,
    )
    if report.dial_status:
        console.print(f"  dial status   {report.dial_status}", highlight=False)
    console.print(f"  prompts       {', '.join(report.prompts) or '(none)'}", highlight=False)
    if report.digits_sent:
        console.print(f"  digits sent   {report.digits_sent}", highlight=False)
    console.print(f"  applications  {' > '.join(report.applications) or '(none)'}", highlight=False)
    console.print(
        f"  hang-up       cause {report.hangup_cause} ({report.hangup_cause_text})"
        + (
            f"; far end {report.far_end_cause} ({report.far_end_cause_text})"
            if report.far_end_cause is not None
            else ""
        ),
        highlight=False,
    )
    console.print(
        f"  duration      {report.duration} s" + (" (cut at --max-duration)" if report.timed_out else ""),
        highlight=False,
    )
    if report.asterisk_lost:
        console.print("  Asterisk went away during the call (no end of call was reported)", highlight=False)
