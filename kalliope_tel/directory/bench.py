"""``kalliope-tel bench directory``: a private slapd and store, N entries
published from empty, then the delay from one committed change (an
extension renamed) to the new name answering in LDAP, with the sync loop
running as serve runs it (a round every 0.5 s). Target: p99 under 2 s."""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import typer
from sqlalchemy import insert, select, update

from kalliope_tel.config import Settings
from kalliope_tel.container import Container
from kalliope_tel.db import migrate
from kalliope_tel.db.engine import transaction
from kalliope_tel.directory.link import Link
from kalliope_tel.directory.slapd import Slapd
from kalliope_tel.directory.sync import EVERY, DirectorySync, target_of
from kalliope_tel.extensions.models import Extension
from kalliope_tel.tenancy import companies
from kalliope_tel.tenancy import services as tenancy
from kalliope_tel.tenancy.models import Pbx


def _seed(container: Container, entries: int, per_pbx: int) -> list[str]:
    slugs = []
    with transaction(container.sessions) as session:
        customer = companies.create_customer(session, companies.installation_partner(session), "Bench Srl")
        for index in range(max(1, entries // per_pbx)):
            pbx = tenancy.create_pbx(session, f"b{index:04d}", f"Bench {index}", company=customer)
            rows = [{"pbx_id": pbx.id, "number": f"{1000 + n}", "name": f"Person {index} {n}"} for n in range(per_pbx)]
            session.execute(insert(Extension), rows)
            slugs.append(pbx.slug)
    return slugs


def _answers(link: Link, slug: str, number: str, name: str) -> bool:
    held = link.held(slug).get(number, {})
    return held.get("cn") == [name.encode()]


def run(entries: int, per_pbx: int, changes: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="kt-bench-directory-"))
    server = Slapd(folder / "directory")
    server.start()
    container = Container(Settings(database_url=f"sqlite:///{folder / 'store.sqlite3'}", directory_dir=server.dir))
    try:
        migrate.upgrade(container.engine)
        slugs = _seed(container, entries, per_pbx)
        sync = DirectorySync(container, None, None)
        started = time.perf_counter()
        sync.round()
        publish_s = time.perf_counter() - started
        target = target_of(container)
        assert target is not None
        reader = Link(target)
        reader.connect()
        published = sum(len(reader.held(slug)) for slug in slugs)
        stop = threading.Event()

        def loop() -> None:  # as serve's job: a round every EVERY seconds
            while not stop.is_set():
                sync.round()
                stop.wait(EVERY)

        worker = threading.Thread(target=loop, daemon=True)
        worker.start()
        delays = []
        for n in range(changes):
            slug = slugs[n % len(slugs)]
            name = f"Renamed {n}"
            with transaction(container.sessions) as session:
                pbx_id = session.scalars(select(Pbx.id).where(Pbx.slug == slug)).one()
                session.execute(update(Extension).where(Extension.pbx_id == pbx_id, Extension.number == "1000")
                                .values(name=name))  # fmt: skip
                session.execute(update(Pbx).where(Pbx.id == pbx_id)
                                .values(config_serial=Pbx.config_serial + 1))  # fmt: skip
            committed = time.perf_counter()
            while not _answers(reader, slug, "1000", name):
                time.sleep(0.02)
            delays.append((time.perf_counter() - committed) * 1000)
        stop.set()
        worker.join(5)
        reader.close()
        sync.close()
        ordered = sorted(delays)
        return {
            "entries": published,
            "pbxs": len(slugs),
            "publish_from_empty_s": round(publish_s, 2),
            "entries_per_s": round(published / publish_s) if publish_s else 0,
            "changes": changes,
            "change_to_ldap_p50_ms": round(statistics.median(ordered)),
            "change_to_ldap_p99_ms": round(ordered[max(0, int(len(ordered) * 0.99) - 1)]),
            "change_to_ldap_max_ms": round(ordered[-1]),
            "target": {"p99_ms": 2000},
        }
    finally:
        container.close()
        server.stop()


def bench_command(
    entries: int = typer.Option(10_000, help="Entries published from empty."),
    per_pbx: int = typer.Option(1_000, "--per-pbx", help="Entries per PBX."),
    changes: int = typer.Option(100, help="Changes timed from commit to LDAP."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Directory: entries published from empty per second, and change-to-LDAP p50/p99."""
    from kalliope_tel.cli.context import Steps, print_table

    with Steps(f"bench directory: {entries} entries, {changes} changes"):
        result = run(entries, per_pbx, changes)
    if as_json:
        print(json.dumps(result))
        return
    print_table("directory", ["figure", "value"], [[k, v] for k, v in result.items()])
