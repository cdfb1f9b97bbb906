from __future__ import annotations

import json

import typer

from kalliope_tel.cli.context import err_console, print_table

app = typer.Typer(help="Benchmarks: print figures (--json: only a JSON document on standard output).")


@app.command("agi")
def agi(
    requests: int = typer.Option(20000, help="Requests in the throughput phase."),
    concurrency: int = typer.Option(32, help="Concurrent clients in the throughput phase."),
    rate: int = typer.Option(500, help="Requests per second in the latency phase."),
    seconds: float = typer.Option(10.0, help="Length of the latency phase."),
    database_url: str | None = typer.Option(None, help="Database for the handler (default: temp SQLite)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """FastAGI requests/s on one core and p50/p99 latency at a fixed rate."""
    from kalliope_tel.bench import agi as bench

    with err_console.status(f"FastAGI: {requests} requests, then {rate}/s for {seconds:.0f} s"):
        result = bench.run(
            requests=requests,
            concurrency=concurrency,
            rate=rate,
            seconds=seconds,
            database_url=database_url,
        )
    data = bench.as_dict(result)
    if as_json:
        print(json.dumps(data))
        return
    print_table(
        "FastAGI benchmark (server pinned to one core)",
        ["figure", "value"],
        [[k, v] for k, v in data.items()],
    )


# Declared by the wake-up feature (kalliope_tel/wakeup/feature.py), mounted by the CLI.
def wakeup(
    alarms: int = typer.Option(1000, help="Alarms due at the same instant."),
    cap: int = typer.Option(50, help="Simultaneous wake-up calls at most."),
    database_url: str | None = typer.Option(None, help="Database (default: temp SQLite)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Wake-up calls against a private lab Asterisk: time to finish, lateness, CPU per alarm."""
    from rich.progress import Progress

    from kalliope_tel.bench import wakeup as bench
    from kalliope_tel.cli.context import STATE

    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task(f"{alarms} wake-up calls, cap {cap}", total=alarms)
        result = bench.run(
            alarms=alarms,
            cap=cap,
            lab_root=STATE.settings.lab_root,
            database_url=database_url,
            progress=lambda done, total: progress.update(task, completed=done),
        )
    data = bench.as_dict(result)
    if as_json:
        print(json.dumps(data))
        return
    print_table("wake-up benchmark", ["figure", "value"], [[k, v] for k, v in data.items()])


# Declared by the fax feature (kalliope_tel/fax/feature.py), mounted by the CLI.
def fax(
    pages: int = typer.Option(5, help="Pages of the test document."),
    repeats: int = typer.Option(15, help="Runs per mode (C and Python alternate)."),
    realtime: bool = typer.Option(True, help="Also find how many real-time RTP receptions one core carries."),
    start: int = typer.Option(200, help="Receptions in the first real-time run."),
    step: int = typer.Option(100, help="Receptions added per real-time run until one fails."),
    max_receptions: int = typer.Option(1000, help="Stop the real-time search here."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Fax engine speed per mode, binding overhead, and real-time RTP receptions per core."""
    from rich.progress import Progress

    from kalliope_tel.bench import fax as bench
    from kalliope_tel.bench import fax_realtime

    with err_console.status(f"fax loopback, {pages} pages x {repeats} per mode"):
        figures = bench.as_dicts(bench.run(pages=pages, repeats=repeats))
    columns = list(figures[0])
    if not as_json:
        print_table("fax engine speed", columns, [[f[c] for c in columns] for f in figures])
    runs: list[dict[str, object]] = []
    if realtime:
        with Progress(console=err_console, transient=True) as progress:
            task = progress.add_task("real-time receptions", total=None)
            found = fax_realtime.search(
                start=start,
                step=step,
                limit=max_receptions,
                progress=lambda n: progress.update(task, description=f"{n} receptions"),
            )
        runs = fax_realtime.as_dicts(found)
        rt_columns = [c for c in runs[0] if c != "outcomes"]
        if not as_json:
            print_table("G.711 receptions over RTP, one core", rt_columns, [[r[c] for c in rt_columns] for r in runs])
    if as_json:
        passed = [int(str(r["receptions"])) for r in runs if r["passed"]]
        print(
            json.dumps(
                {"modes": figures, "realtime_runs": runs, "realtime_receptions_per_core": max(passed, default=0)}
            )
        )
