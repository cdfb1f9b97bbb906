"""``bench provision``: provider scale on a private lab Asterisk, with a
real ``serve`` applying every change.

1. Import: ``pbxs`` PBXs with ``extensions`` extensions each, each PBX's
   extensions through the Manager's spreadsheet import (one file per PBX).
2. Load: render every PBX's files, write them, start ``serve`` (with
   realtime accounts it answers Asterisk's lookups), and time Asterisk's
   reload of the dialplan (first with every hint's device unknown, then
   again) and of res_pjsip with all of them; Asterisk's memory.
3. Changes: with everything loaded and ``serve`` running, ``changes``
   changes of one extension each (a new password, or a suspension), each
   timed from its commit until Asterisk uses it (the auth's digest changed,
   the endpoint gone): p50, p99, max.
4. A spreadsheet of ``big_import`` extensions into one more PBX: imported
   and live (every endpoint known to Asterisk) in how many seconds.
"""

from __future__ import annotations

import csv
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class ProvisionResult:
    pbxs: int
    extensions_per_pbx: int
    endpoints: int
    import_seconds: float
    import_extensions_per_second: float
    render_write_seconds: float
    dialplan_reload_seconds: float
    dialplan_reload_again_seconds: float
    pjsip_reload_seconds: float
    asterisk_rss_mib_before: float
    asterisk_rss_mib_loaded: float
    first_change_seconds: float  # includes serve's first pass over every PBX
    changes: int  # after the first
    change_to_live_p50_ms: float
    change_to_live_p99_ms: float
    change_to_live_max_ms: float
    big_import_extensions: int
    big_import_seconds: float
    big_import_live_seconds: float
    database: str
    pjsip_accounts: str


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _sheet(path: Path, numbers: list[str]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["number", "name", "licence"])
        writer.writerows([n, f"Ext {n}", "start"] for n in numbers)
    return path


def _command(state: Any, cli: str) -> str:
    """A CLI command through AMI, waited for to its end: 'asterisk -rx'
    gives up after 60 s without output (earlier figures of 60 s were that)."""
    import asyncio

    from kalliope_tel.asterisk.ami.client import AmiClient

    async def run() -> str:
        ami = AmiClient("127.0.0.1", state.ami_port, state.ami_username, state.ami_password)
        await ami.connect()
        try:
            return await ami.command(cli, timeout=3600)
        finally:
            await ami.aclose()

    return asyncio.run(run())


def _dialplan(lab: Any, slug: str, number: str) -> str:
    return str(lab.cli(f"dialplan show {number}@kt-{slug}-extensions", check=False))


def _refused(lab: Any, slug: str, number: str) -> bool:
    return "Hangup(21)" in _dialplan(lab, slug, number)


def _rings(lab: Any, slug: str, number: str) -> bool:
    return "Dial(" in _dialplan(lab, slug, number)


def _timed(work: Callable[[], Any]) -> float:
    started = time.monotonic()
    work()
    return time.monotonic() - started


def run(
    *,
    pbxs: int,
    extensions: int,
    changes: int,
    big_import: int,
    lab_root: Path,
    database_url: str | None,
    progress: Callable[[str], None],
    accounts: str = "realtime",
) -> ProvisionResult:
    from kalliope_tel.asterisk.apply import write_files
    from kalliope_tel.asterisk.config_state import record_applied
    from kalliope_tel.config import Settings
    from kalliope_tel.container import Container
    from kalliope_tel.db import migrate
    from kalliope_tel.db.engine import transaction
    from kalliope_tel.dialplan.generator import LAB_DEVICE, render
    from kalliope_tel.extensions import services as extensions_services
    from kalliope_tel.extensions.models import ExtensionStatus
    from kalliope_tel.lab.instance import LabInstance
    from kalliope_tel.lab.ports import free_tcp_port
    from kalliope_tel.omnia import extensions_table, manager
    from kalliope_tel.oplog.services import Actor
    from kalliope_tel.tenancy import companies
    from kalliope_tel.tenancy.models import Pbx

    tmp = tempfile.TemporaryDirectory(prefix="kt-bench-provision-")
    folder = Path(tmp.name)
    url = database_url or f"sqlite:///{folder}/bench.sqlite3"
    lab = LabInstance(lab_root, f"bench-prov-{uuid.uuid4().hex[:6]}")
    container = Container(Settings(database_url=url))
    actor = Actor("bench", "cli")
    serve: subprocess.Popen[bytes] | None = None
    try:
        state = lab.start()
        migrate.upgrade(container.engine)
        rss_before = _rss_mib(state.pid)

        # 1. Import, PBX by PBX, through the spreadsheet import.
        started = time.monotonic()
        for p in range(pbxs):
            slug = f"b{p:04d}"
            numbers = [str(200 + i) for i in range(extensions)]
            with transaction(container.sessions) as s:
                customer = companies.installation_partner(s)
                pbx = manager.create_pbx(s, actor, customer, slug, name=f"Bench {p}")
                extensions_table.import_file(s, actor, customer, pbx, _sheet(folder / "sheet.csv", numbers))
            if p % 50 == 49 or p == pbxs - 1:
                progress(f"imported {p + 1} of {pbxs} PBXs")
        import_seconds = time.monotonic() - started

        # 2. Everything loaded: render and write, then reload, timed apart.
        def render_write() -> None:
            files: dict[str, str] = {}
            with transaction(container.sessions, read_only=True) as s:
                for pbx in s.query(Pbx).all():
                    files.update(render(s, pbx, LAB_DEVICE, None, accounts).files)
                serials = {pbx.id: pbx.config_serial for pbx in s.query(Pbx).all()}
            write_files(lab.dir / "etc", files)
            with transaction(container.sessions) as s:
                record_applied(s, serials)

        render_write_seconds = _timed(render_write)
        # serve runs from here on: with realtime accounts it is what answers
        # Asterisk's lookups during the reloads (an Asterisk start's cost).
        env = {
            "KALLIOPE_DATABASE_URL": url,
            "KALLIOPE_LAB_ROOT": str(lab_root),
            "KALLIOPE_LAB_NAME": lab.name,
            "KALLIOPE_HTTP_BIND": "127.0.0.1:0",
            "KALLIOPE_AGI_BIND": f"127.0.0.1:{free_tcp_port()}",
            "KALLIOPE_NODE_NAME": "bench-provision",
            "KALLIOPE_PJSIP_ACCOUNTS": accounts,
            "KALLIOPE_LOG_LEVEL": "warning",
            "PATH": "/usr/bin:/bin",
        }
        serve_log = (folder / "serve.log").open("wb")
        serve = subprocess.Popen([sys.executable, "-m", "kalliope_tel", "serve"], env=env,
                                 stdout=serve_log, stderr=subprocess.STDOUT)  # fmt: skip
        time.sleep(8)  # serve's start: links and AMI (its first pass is in the first change's time)
        progress("files written; reloading Asterisk")
        # The first reload asks every hint's device (cold); the second finds them known.
        dialplan_reload = _timed(lambda: _command(state, "dialplan reload"))
        dialplan_reload_again = _timed(lambda: _command(state, "dialplan reload"))
        pjsip_reload = _timed(lambda: _command(state, "module reload res_pjsip.so"))
        endpoints = pbxs * extensions
        rss_loaded = _rss_mib(state.pid)
        progress(f"{endpoints} endpoints loaded: dialplan reload {dialplan_reload:.1f} s, pjsip {pjsip_reload:.1f} s")

        # 3. One change at a time, timed until Asterisk uses it.
        rng = random.Random(7)  # noqa: S311 - a reproducible choice of extensions, not a secret
        delays: list[float] = []
        for n in range(changes):
            slug, number = f"b{rng.randrange(pbxs):04d}", str(200 + rng.randrange(extensions))
            login = f"{slug}-{number}"
            suspend = n % 2 == 1
            with transaction(container.sessions) as s:
                pbx = s.query(Pbx).filter(Pbx.slug == slug).one()
                if suspend:
                    extensions_services.set_status(s, pbx, number, ExtensionStatus.SUSPENDED)
                else:
                    extensions_services.new_passwords(s, pbx, number)
                    ha1 = extensions_services.get_extension(s, pbx, number).accounts[0].ha1
            committed = time.monotonic()
            while True:
                if suspend:  # the endpoint gone and the extension's calls refused
                    out = lab.cli(f"pjsip show endpoint {login}", check=False)
                    live = "Unable to find" in out and _refused(lab, slug, number)
                else:
                    out = lab.cli(f"pjsip show auth {login}-auth", check=False)
                    live = ha1 in out
                if live:
                    break
                if time.monotonic() - committed > 900:
                    tail = (folder / "serve.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"change {n} ({login}) not live after 900 s; serve said:\n{tail}")
                time.sleep(0.02)
            delays.append(time.monotonic() - committed)
            if suspend:  # back, so a later change may pick it again
                with transaction(container.sessions) as s:
                    pbx = s.query(Pbx).filter(Pbx.slug == slug).one()
                    extensions_services.set_status(s, pbx, number, ExtensionStatus.ACTIVE)
                time.sleep(0.5)
            if n % 10 == 9:
                progress(f"{n + 1} of {changes} changes live")

        # 4. One big spreadsheet into a new PBX, live when Asterisk knows its last endpoint.
        big = [str(10000 + i) for i in range(big_import)]
        started = time.monotonic()
        with transaction(container.sessions) as s:
            customer = companies.installation_partner(s)
            pbx = manager.create_pbx(s, actor, customer, "bigsheet", name="Big sheet")
            extensions_table.import_file(s, actor, customer, pbx, _sheet(folder / "big.csv", big))
        big_seconds = time.monotonic() - started
        # Live: Asterisk knows the last endpoint, and the dialplan rings it.
        while "Unable to find" in lab.cli(f"pjsip show endpoint bigsheet-{big[-1]}", check=False) or not _rings(
            lab, "bigsheet", big[-1]
        ):
            if time.monotonic() - started > 600:
                raise RuntimeError("the big import not live after 600 s")
            time.sleep(0.2)
        big_live = time.monotonic() - started
        # The first change waits for serve's first pass over every PBX (it
        # renders them all once at start): reported apart.
        first_change = delays.pop(0) if delays else 0.0
        ordered = sorted(delays)
        return ProvisionResult(
            pbxs=pbxs,
            extensions_per_pbx=extensions,
            endpoints=endpoints,
            import_seconds=round(import_seconds, 1),
            import_extensions_per_second=round(endpoints / import_seconds, 1),
            render_write_seconds=round(render_write_seconds, 2),
            dialplan_reload_seconds=round(dialplan_reload, 2),
            dialplan_reload_again_seconds=round(dialplan_reload_again, 2),
            pjsip_reload_seconds=round(pjsip_reload, 2),
            asterisk_rss_mib_before=rss_before,
            asterisk_rss_mib_loaded=rss_loaded,
            first_change_seconds=round(first_change, 1),
            changes=len(delays),
            change_to_live_p50_ms=round(statistics.median(ordered) * 1000, 1) if ordered else 0.0,
            change_to_live_p99_ms=round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1)
            if ordered
            else 0.0,
            change_to_live_max_ms=round(ordered[-1] * 1000, 1) if ordered else 0.0,
            big_import_extensions=big_import,
            big_import_seconds=round(big_seconds, 1),
            big_import_live_seconds=round(big_live, 1),
            pjsip_accounts=accounts,
            database=re.sub(r"//[^@/]*@", "//", url.split("?")[0]).split(":", 1)[0],
        )
    finally:
        if serve is not None:
            serve.terminate()
            try:
                serve.wait(30)
            except subprocess.TimeoutExpired:
                serve.kill()
        container.close()
        lab.stop()
        lab.purge()
        tmp.cleanup()


def as_dict(result: ProvisionResult) -> dict[str, Any]:
    return asdict(result)
