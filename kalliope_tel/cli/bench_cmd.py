from __future__ import annotations

import json

import typer

from kalliope_tel.cli.context import Steps, print_table

app = typer.Typer(help="Benchmarks: print figures (--json: only a JSON document on standard output).")


@app.command("agi")
def agi(
    handler: list[str] = typer.Option(
        [], "--handler", help="A registered FastAGI handler (repeatable); default: the three hotel handlers."
    ),
    params: str = typer.Option("", help="Query string for --handler, e.g. 'room=102&pbx=default'."),
    requests: int = typer.Option(10000, help="Requests in the throughput phase, per handler."),
    concurrency: int = typer.Option(32, help="Concurrent clients in the throughput phase."),
    rate: int = typer.Option(500, help="Requests per second in the latency phase."),
    seconds: float = typer.Option(10.0, help="Length of the latency phase, per handler."),
    database_url: str | None = typer.Option(None, help="Database for the handlers (default: temp SQLite)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """FastAGI handlers on one core: requests/s, server CPU per request next to
    a bare asyncio loop measured in the same run, p50/p99 at a fixed rate."""
    from kalliope_tel.bench import agi as bench

    with Steps("bench agi") as steps:
        report = bench.run(
            handlers=handler or None,
            params=params,
            requests=requests,
            concurrency=concurrency,
            rate=rate,
            seconds=seconds,
            database_url=database_url,
            progress=lambda name: steps.say(
                f"{name}: {requests} requests, then {rate}/s for {seconds:.0f} s", force=True
            ),
        )
    data = bench.as_dict(report)
    if as_json:
        print(json.dumps(data))
        return
    rows = [report.reference, *report.handlers]
    print_table(
        f"FastAGI, server pinned to one core ({report.reference.database})",
        ["handler", "req/s", "CPU µs/req", "x bare loop", "p50 ms", "p99 ms", "max ms", "errors"],
        [
            [
                r.handler,
                r.throughput_rps,
                r.server_cpu_us_per_request,
                r.ratio_to_bare_loop if r.ratio_to_bare_loop is not None else "1",
                r.p50_ms,
                r.p99_ms,
                r.max_ms,
                r.errors,
            ]
            for r in rows
        ],
    )


# Declared by the wake-up feature (kalliope_tel/wakeup/feature.py), mounted by the CLI.
def wakeup(
    alarms: int = typer.Option(1000, help="Alarms due at the same instant."),
    cap: int = typer.Option(50, help="Simultaneous wake-up calls at most."),
    database_url: str | None = typer.Option(None, help="Database (default: temp SQLite)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Wake-up calls against a private lab Asterisk: time to finish, lateness, CPU per alarm."""
    from kalliope_tel.bench import wakeup as bench
    from kalliope_tel.cli.context import STATE

    with Steps(f"bench wakeup: {alarms} calls, cap {cap}") as steps:
        result = bench.run(
            alarms=alarms,
            cap=cap,
            lab_root=STATE.settings.lab_root,
            database_url=database_url,
            progress=lambda done, total: steps.say(f"{done} of {total} confirmed", force=done == total),
        )
    data = bench.as_dict(result)
    if as_json:
        print(json.dumps(data))
        return
    print_table("wake-up benchmark", ["figure", "value"], [[k, v] for k, v in data.items()])


# Declared by the fax feature (kalliope_tel/fax/feature.py), mounted by the CLI.
def fax(
    pages: int = typer.Option(5, help="Pages of the test document for the engine speed runs."),
    repeats: int = typer.Option(15, help="Runs per mode (C and Python alternate)."),
    realtime: bool = typer.Option(True, help="Also find how many real-time RTP receptions one core carries."),
    start: int = typer.Option(200, help="Receptions in the first real-time run."),
    step: int = typer.Option(100, help="Receptions added per real-time run until one fails."),
    max_receptions: int = typer.Option(1000, help="Stop the real-time search here."),
    ramp: float = typer.Option(5.0, help="Seconds over which each real-time run's calls arrive (0: all at once)."),
    realtime_pages: int = typer.Option(2, help="Pages each real-time call sends."),
    overload: bool = typer.Option(True, help="Then offer twice the capacity found, with admission on."),
    max_media_load: float = typer.Option(0.7, help="The overload run's fax_max_media_load."),
    overload_count: bool = typer.Option(
        True, help="The overload run's fax_max_calls is the capacity found (off: the media load limit alone)."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Fax engine speed per mode, binding overhead, real-time RTP receptions
    per core, and what admission control does with twice that offered."""
    from kalliope_tel.bench import fax as bench
    from kalliope_tel.bench import fax_realtime

    with Steps("bench fax") as steps:
        steps.say(f"loopback, {pages} pages x {repeats} per mode", force=True)
        figures = bench.as_dicts(bench.run(pages=pages, repeats=repeats))
    columns = list(figures[0])
    if not as_json:
        print_table("fax engine speed", columns, [[f[c] for c in columns] for f in figures])
    runs: list[dict[str, object]] = []
    capacity = 0
    overloaded: dict[str, object] | None = None
    if realtime:
        with Steps("bench fax, real time") as steps:
            found = fax_realtime.search(
                start=start,
                step=step,
                limit=max_receptions,
                ramp=ramp,
                pages=realtime_pages,
                progress=lambda what: steps.say(f"run of {what}", force=True),
            )
            capacity = max((r.offered for r in found if r.passed and not r.refused), default=0)
            if overload and capacity:
                steps.say(f"overload: {2 * capacity} offered, admission on", force=True)
                # As a node is meant to run: fax_max_calls set from this
                # bench, the media load limit as the second guard (a cold
                # node's load limit knows no page's cost yet: fax.admission).
                overloaded = fax_realtime.as_dicts(
                    [
                        fax_realtime.overload(
                            2 * capacity,
                            max_load=max_media_load,
                            max_calls=capacity if overload_count else 0,
                            ramp=ramp,
                            pages=realtime_pages,
                        )
                    ]
                )[0]
        runs = fax_realtime.as_dicts(found)
        if not as_json:
            rt_columns = [c for c in runs[0] if c not in ("outcomes", "jitter")]
            print_table(
                f"G.711 receptions over RTP, one core (calls arrive over {ramp:g} s)",
                rt_columns,
                [[r[c] for c in rt_columns] for r in runs],
            )
            if overloaded is not None:
                print_table(
                    "overload: twice the capacity offered, admission on",
                    ["figure", "value"],
                    [[c, overloaded[c]] for c in rt_columns],
                )
    if as_json:
        document = {
            "modes": figures,
            "realtime_runs": runs,
            "realtime_receptions_per_core": capacity,
            "overload_run": overloaded,
        }
        print(json.dumps(document))


# Declared by the Omnia feature (kalliope_tel/omnia/feature.py), mounted by the CLI.
def provision(
    pbxs: int = typer.Option(1000, help="PBXs to create."),
    extensions: int = typer.Option(50, help="Extensions per PBX (each with its SIP account)."),
    changes: int = typer.Option(100, help="Changes timed until Asterisk uses them."),
    big_import: int = typer.Option(5000, help="Extensions in the one big spreadsheet imported at the end."),
    database_url: str | None = typer.Option(None, help="Database (default: temp SQLite)."),
    accounts: str = typer.Option("realtime", help="How Asterisk gets the accounts: realtime or files."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Provider scale on a private lab Asterisk with serve running: import, reload cost, memory, change-to-live."""
    if accounts not in ("realtime", "files"):
        raise typer.BadParameter("realtime or files", param_hint="--accounts")
    from kalliope_tel.bench import provision as bench
    from kalliope_tel.cli.context import STATE

    with Steps(f"bench provision: {pbxs} PBXs x {extensions} extensions") as steps:
        result = bench.run(
            pbxs=pbxs, extensions=extensions, changes=changes, big_import=big_import,
            lab_root=STATE.settings.lab_root, database_url=database_url, accounts=accounts,
            progress=lambda text: steps.say(text, force=True),
        )  # fmt: skip
    data = bench.as_dict(result)
    if as_json:
        print(json.dumps(data))
        return
    print_table("provisioning benchmark", ["figure", "value"], [[k, v] for k, v in data.items()])
