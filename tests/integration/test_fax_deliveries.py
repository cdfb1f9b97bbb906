"""What a fax owes after its call, on both databases, with real peers: the
archive to a local path and to a real OpenSSH server over SFTP with built-in
encryption (decrypted back by the CLI, byte for byte), and mail through a
real SMTP server. A peer that is down delays a delivery; nothing is lost."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, update

from kalliope_tel.config import Settings
from kalliope_tel.container import Container
from kalliope_tel.db.base import utcnow
from kalliope_tel.db.engine import transaction
from kalliope_tel.fax import deliveries
from kalliope_tel.fax.crypto import new_key
from kalliope_tel.fax.inbound import Reception
from kalliope_tel.fax.models import FaxDelivery, FaxInstance, FaxReceived, Media
from kalliope_tel.fax.service import FaxService
from tests.conftest import kalliope
from tests.fax_service_support import configure_office, free_port, smtp_server
from tests.fax_support import make_document
from tests.sftp_server import sftp_server, start_sshd

pytestmark = pytest.mark.integration


async def _receive(service: FaxService, instance_id: int, spool: Path, calling: str) -> int:
    tiff = spool / f"{uuid.uuid4().hex}.tif"
    make_document(tiff, 2)
    now = datetime.now(UTC)
    reception = Reception(f"c-{calling}", calling, "700", now, now, True, "", 2, 14400, True, "R", Media.ENGINE)
    return await service.received("default", instance_id, None, reception, tiff)


async def _drain(service: FaxService) -> None:
    while await service.deliver_due():
        pass


async def test_archive_to_local_and_sftp_encrypted_and_retries_when_peers_are_down(
    fresh_db_url: str, tmp_path: Path
) -> None:
    done = kalliope("db", "upgrade", env={"KALLIOPE_DATABASE_URL": fresh_db_url})
    assert done.returncode == 0, done.stderr
    data = tmp_path / "data"
    configure_office(fresh_db_url, data)
    key = new_key()
    env = {"KALLIOPE_DATABASE_URL": fresh_db_url, "KALLIOPE_DATA_DIR": str(data), "KALLIOPE_FAX_ARCHIVE_KEY": key}

    def cli(*args: str) -> str:
        result = kalliope("fax", *args, env=env)
        assert result.returncode == 0, result.stderr
        return result.stdout

    smtp_port = free_port()
    with sftp_server(tmp_path / "ssh") as sftp:
        sftp.key_file.chmod(0o600)
        cli(
            "archive", "storage", "add", "vault", "--host", "127.0.0.1", "--port", str(sftp.port), "--user", sftp.user,
            "--key-file", str(sftp.key_file), "--known-hosts", str(sftp.known_hosts), "--directory", str(sftp.root),
        )  # fmt: skip
        cli("archive", "add", "--directory", str(tmp_path / "archive"))
        cli("archive", "add", "--storage", "vault", "--encryption", "builtin")
        cli(
            "instances", "update", "office", "--archive-prefix", "year", "--archive-path", "faxes/office",
            "--archive-separation", "after-suffix",
        )  # fmt: skip
        settings = Settings(
            database_url=fresh_db_url, data_dir=data, fax_archive_key=key, smtp_url=f"smtp://127.0.0.1:{smtp_port}"
        )
        container = Container(settings)
        try:
            service = FaxService(container, "test-node")
            with transaction(container.sessions) as s:
                instance_id = s.scalars(select(FaxInstance.id)).one()
            spool = data / "spool"
            spool.mkdir(parents=True)
            first = await _receive(service, instance_id, spool, "0501234567")
            # The mail server is down: mails wait, the archive goes ahead.
            await _drain(service)
            with transaction(container.sessions) as s:
                pending = s.scalars(select(FaxDelivery).where(FaxDelivery.done.is_(False))).all()
                fax = s.get(FaxReceived, first)
                assert fax is not None
                stored, name = data / fax.document, fax.file_name
            assert sorted(d.kind.value for d in pending) == ["mail", "mail"]
            assert all("ConnectionRefused" in d.last_error or "SMTP" in d.last_error for d in pending)
            year = f"{datetime.now(UTC):%Y}"
            local = tmp_path / "archive" / year / "faxes" / "office" / "in" / name
            assert local.read_bytes() == stored.read_bytes()
            remote = sftp.root / year / "faxes" / "office" / "in" / f"{name}.ktenc"
            assert b"%PDF" not in remote.read_bytes()
            out = tmp_path / "decrypted.pdf"
            assert kalliope("fax", "archive", "decrypt", str(remote), "-o", str(out), env=env).returncode == 0
            assert out.read_bytes() == stored.read_bytes()
            wrong = kalliope(
                "fax", "archive", "decrypt", str(remote), "-o", str(tmp_path / "x.pdf"),
                env=env | {"KALLIOPE_FAX_ARCHIVE_KEY": new_key()},
            )  # fmt: skip
            assert wrong.returncode == 1 and "the key is not the one" in wrong.stderr

            # Now the SFTP server is down and the mail server up.
            sftp.stop()
            second = await _receive(service, instance_id, spool, "0507654321")
            with smtp_server(smtp_port) as (mail, _):
                with transaction(container.sessions) as s:
                    s.execute(update(FaxDelivery).values(next_try_at=utcnow()))
                await _drain(service)
                assert len(mail.to("alice@example.com")) == 2 and len(mail.to("bob@example.com")) == 2
                with transaction(container.sessions) as s:
                    (waiting,) = s.scalars(select(FaxDelivery).where(FaxDelivery.done.is_(False))).all()
                    assert waiting.kind.value == "archive" and waiting.fax_id == second and waiting.last_error
                sftp.proc = start_sshd(tmp_path / "ssh", sftp.port)
                with transaction(container.sessions) as s:
                    s.execute(update(FaxDelivery).values(next_try_at=utcnow()))
                await _drain(service)
            with transaction(container.sessions) as s:
                rows = s.scalars(select(FaxDelivery)).all()
                assert all(r.done and not r.last_error for r in rows), [(r.kind, r.last_error) for r in rows]
                assert sorted(r.attempts for r in rows) == [1, 1, 1, 1, 1, 2, 2, 2]
            assert len(list((sftp.root / year / "faxes" / "office" / "in").glob("*.ktenc"))) == 2
        finally:
            container.close()


class StallingProxy:
    """A TCP relay to the real sshd that, while ``stalled``, stops passing the
    client's bytes once the SSH handshake is through (past ``after`` bytes):
    the server looks alive, the copy never finishes."""

    def __init__(self, target: int, after: int = 6000) -> None:
        self.target, self.after = target, after
        self.stalled = True
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        stall = self.stalled

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, limit: int | None) -> None:
            sent = 0
            with contextlib.suppress(ConnectionError):
                while data := await src.read(4096):
                    if limit is not None and sent + len(data) > limit:
                        await asyncio.Event().wait()  # hold the rest forever
                    dst.write(data)
                    await dst.drain()
                    sent += len(data)
            dst.close()

        await asyncio.gather(pipe(reader, up_writer, self.after if stall else None), pipe(up_reader, writer, None),
                             return_exceptions=True)  # fmt: skip


async def test_a_stalled_sftp_host_delays_only_its_own_copy_and_each_copy_is_written_once(
    fresh_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kalliope_tel.fax import service as service_module

    monkeypatch.setattr(service_module, "DELIVERY_SECONDS", 4.0)
    assert kalliope("db", "upgrade", env={"KALLIOPE_DATABASE_URL": fresh_db_url}).returncode == 0
    data = tmp_path / "data"
    configure_office(fresh_db_url, data)
    env = {"KALLIOPE_DATABASE_URL": fresh_db_url, "KALLIOPE_DATA_DIR": str(data)}
    smtp_port = free_port()
    with sftp_server(tmp_path / "ssh") as sftp, smtp_server(smtp_port) as (mail, _):
        sftp.key_file.chmod(0o600)
        proxy = StallingProxy(sftp.port)
        await proxy.start()
        known = tmp_path / "known_hosts_proxy"
        known.write_text(sftp.known_hosts.read_text().replace(f"]:{sftp.port} ", f"]:{proxy.port} "))
        for args in (
            ["archive", "storage", "add", "slow", "--host", "127.0.0.1", "--port", str(proxy.port), "--user",
             sftp.user, "--key-file", str(sftp.key_file), "--known-hosts", str(known), "--directory", str(sftp.root)],
            ["archive", "add", "--storage", "slow"],
            ["archive", "add", "--directory", str(tmp_path / "archive")],
        ):  # fmt: skip
            done = kalliope("fax", *args, env=env)
            assert done.returncode == 0, done.stderr
        container = Container(Settings(database_url=fresh_db_url, data_dir=data,
                                       smtp_url=f"smtp://127.0.0.1:{smtp_port}"))  # fmt: skip
        try:
            service = FaxService(container, "node-a")
            with transaction(container.sessions) as s:
                instance_id = s.scalars(select(FaxInstance.id)).one()
            spool = data / "spool"
            spool.mkdir(parents=True)
            await _receive(service, instance_id, spool, "0501234567")
            started = time.monotonic()
            assert await service.deliver_due() == 4  # two mails, the local copy, the stalled SFTP copy
            took = time.monotonic() - started
            assert took < 4.0 + 3.0, took  # the stalled copy was cut at its own limit
            assert len(mail.to("alice@example.com")) == 1 and len(mail.to("bob@example.com")) == 1
            assert len(list((tmp_path / "archive").rglob("*.pdf"))) == 1
            with transaction(container.sessions) as s:
                (waiting,) = s.scalars(select(FaxDelivery).where(FaxDelivery.done.is_(False))).all()
                assert waiting.kind.value == "archive" and "not done within 4 s" in waiting.last_error
                assert waiting.claimed_by is None  # finished by its own node, not left to the lease
            # The host recovers: the copy is written, once.
            proxy.stalled = False
            with transaction(container.sessions) as s:
                s.execute(update(FaxDelivery).values(next_try_at=utcnow()))
            await _drain(service)
            copies = [p for p in sftp.root.rglob("*") if p.is_file() and not p.name.startswith(".")]
            assert len(copies) == 1 and copies[0].read_bytes().startswith(b"%PDF")
            assert len(mail.to("alice@example.com")) == 1  # nothing sent twice
            # A claim that is no longer ours (the lease ran out, another node took it) is not finished by us.
            with transaction(container.sessions) as s:
                s.execute(update(FaxDelivery).values(done=False, next_try_at=utcnow()))
                (first, *_rest) = deliveries.claim(s, "node-a", 1)
                s.execute(update(FaxDelivery).where(FaxDelivery.id == first.id).values(claimed_by="node-b"))
            with transaction(container.sessions) as s:
                assert deliveries.finish(s, first, "node-a", None) is False
                row = s.get(FaxDelivery, first.id)
                assert row is not None and (row.done, row.claimed_by) == (False, "node-b")
        finally:
            container.close()


def _database_away(url: str, away: bool) -> None:
    """A real outage on PostgreSQL: the database refuses new connections and
    its open ones are cut (as a failover or a restart of the server does)."""
    import psycopg

    from tests.conftest import PG_ADMIN_URL

    name = url.rpartition("/")[2].split("?")[0]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"false" if away else "true"}')
        if away:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))


async def test_a_reception_that_ends_while_the_database_is_away_is_registered_and_mailed_once(
    fresh_db_url: str, tmp_path: Path
) -> None:
    if not fresh_db_url.startswith("postgresql"):
        pytest.skip("the outage is made on PostgreSQL (connections refused); SQLite has no server to take away")
    assert kalliope("db", "upgrade", env={"KALLIOPE_DATABASE_URL": fresh_db_url}).returncode == 0
    data = tmp_path / "data"
    configure_office(fresh_db_url, data)
    smtp_port = free_port()
    settings = Settings(database_url=fresh_db_url, data_dir=data, smtp_url=f"smtp://127.0.0.1:{smtp_port}")
    container = Container(settings)
    spool = data / "spool"
    spool.mkdir(parents=True)
    try:
        service = FaxService(container, "node-a")
        with transaction(container.sessions) as s:
            instance_id = s.scalars(select(FaxInstance.id)).one()
        container.engine.dispose()
        _database_away(fresh_db_url, True)
        try:
            assert await _receive(service, instance_id, spool, "0501234567") is None  # left for later, not lost
            assert len(list((data / "fax" / "pending").glob("*.json"))) == 1
            assert len(list(spool.glob("*.tif"))) == 1  # the pages stay until the register has them
        finally:
            _database_away(fresh_db_url, False)
    finally:
        container.close()
    # "Restarted": a new node process finds the note and registers it, once.
    container = Container(settings)
    try:
        service = FaxService(container, "node-a")
        assert await service.register_pending() == 1
        assert await service.register_pending() == 0
        with smtp_server(smtp_port) as (mail, _):
            await _drain(service)
            assert len(mail.to("alice@example.com")) == 1 and len(mail.to("bob@example.com")) == 1
        with transaction(container.sessions) as s:
            (fax,) = s.scalars(select(FaxReceived)).all()
            assert (fax.calling, fax.pages, fax.ok) == ("0501234567", 2, True)
        assert list((data / "fax" / "pending").glob("*")) == [] and list(spool.glob("*.tif")) == []
    finally:
        container.close()


# A node that sends a fax, commits the job's final state, and is SIGKILLed at once: nothing after the commit runs.
_SEND_AND_DIE = """
import asyncio, os, signal, sys
from pathlib import Path
from kalliope_tel.config import Settings
from kalliope_tel.container import Container
from kalliope_tel.fax import jobs
from kalliope_tel.fax.service import FaxService

async def main() -> None:
    container = Container(Settings(database_url=sys.argv[1], data_dir=Path(sys.argv[2])))
    service = FaxService(container, "node-a")
    (claim,) = await service.claim(None, 1)
    await service.sending(claim)
    state = await service.attempt_done(claim, jobs.AttemptResult(True, "", pages=2, bit_rate=14400, ecm=True))
    print(state.value, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


async def test_serve_killed_right_after_a_job_ends_owes_the_report_and_another_node_mails_it_once(
    fresh_db_url: str, tmp_path: Path
) -> None:
    """The report, the sender's mail and the archive copies are owed by the
    transaction that ends the job (a REPORT delivery), so a node killed right
    after that commit loses nothing: another node writes the report and mails
    it once. A second node that claimed the REPORT and died half way (its
    lease ran out) is replaced the same way, still with one mail."""
    import subprocess
    import sys

    from kalliope_tel.fax import jobs
    from kalliope_tel.fax.models import FaxJob
    from kalliope_tel.tenancy.services import get_pbx
    from kalliope_tel.users.services import get_user

    assert kalliope("db", "upgrade", env={"KALLIOPE_DATABASE_URL": fresh_db_url}).returncode == 0
    data = tmp_path / "data"
    configure_office(fresh_db_url, data)
    (data / "out").mkdir(parents=True)
    make_document(data / "out" / "letter.tif", 2)
    settings = Settings(database_url=fresh_db_url, data_dir=data, smtp_url=f"smtp://127.0.0.1:{free_port()}")
    container = Container(settings)
    try:
        with transaction(container.sessions) as s:
            pbx = get_pbx(s)
            job_id = jobs.submit(s, pbx, "office", get_user(s, pbx, "carol"), "501", document="out/letter.tif",
                                 pages=2, sources=["letter.pdf"]).id  # fmt: skip
    finally:
        container.close()
    killed = subprocess.run(
        [sys.executable, "-c", _SEND_AND_DIE, fresh_db_url, str(data)], capture_output=True, text=True, timeout=120
    )
    assert killed.returncode == -9 and killed.stdout.splitlines()[-1] == "sent", killed.stderr[-2000:]
    container = Container(settings)
    try:
        with transaction(container.sessions) as s:
            (owed,) = s.scalars(select(FaxDelivery)).all()  # only the report, owed with the final state
            assert owed.kind.value == "report" and not owed.done and s.get(FaxJob, job_id).report == ""  # type: ignore[union-attr]
            # Node b claims the report and dies before recording it: its lease runs out.
            (claim,) = deliveries.claim(s, "node-b", 20)
            assert claim.id == owed.id
            s.execute(update(FaxDelivery).values(lease_until=utcnow()))
        port = int(settings.smtp_url.rsplit(":", 1)[1])
        with smtp_server(port) as (mail, _):
            service = FaxService(container, "node-c")
            await _drain(service)
            await _drain(service)
            (report,) = mail.to("carol@example.com")
        assert "501" in str(report["subject"]), report["subject"]
        with transaction(container.sessions) as s:
            job = s.get(FaxJob, job_id)
            assert job is not None and job.report and (data / job.report).is_file()
            kinds = sorted(d.kind.value for d in s.scalars(select(FaxDelivery)).all())
            assert all(d.done for d in s.scalars(select(FaxDelivery)).all()), kinds
            assert kinds.count("mail") == 1 and kinds.count("report") == 1, kinds
    finally:
        container.close()


async def test_two_nodes_finding_one_reception_note_register_it_once(
    fresh_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two nodes on one data directory both find a reception's note (the CI
    saw the call twice in the register after a node was killed). Both check
    the register before either commits (forced here: the check says "not
    yet" to both): the database refuses the second row, and that node's next
    pass finds the first and drops the note."""
    from kalliope_tel.fax import pending
    from kalliope_tel.fax import service as fax_service

    assert kalliope("db", "upgrade", env={"KALLIOPE_DATABASE_URL": fresh_db_url}).returncode == 0
    data = tmp_path / "data"
    configure_office(fresh_db_url, data)
    settings = Settings(database_url=fresh_db_url, data_dir=data)
    a, b = Container(settings), Container(settings)
    try:
        with transaction(a.sessions) as s:
            instance_id = s.scalars(select(FaxInstance.id)).one()
        spool = data / "spool"
        spool.mkdir(parents=True)
        tiff = spool / "in.tif"
        make_document(tiff, 1)
        now = datetime.now(UTC)
        reception = Reception("c-twice", "0501234567", "700", now, now, True, "", 1, 14400, True, "R", Media.ENGINE)
        note = pending.write(data, "default", instance_id, None, reception, tiff)
        node_a, node_b = FaxService(a, "node-a"), FaxService(b, "node-b")
        seen_by_b = pending.load(note.path)  # both nodes picked the note up
        # Both checked the register before either wrote.
        monkeypatch.setattr(fax_service, "registered", lambda *_args, **_kwargs: None)
        first = await node_a._register(note)
        pending.save(seen_by_b)  # node a dropped the note once done; node b still holds its copy
        second = await node_b._register(seen_by_b)
        assert first is not None and second is None  # refused by the database, not a second row
        monkeypatch.undo()
        assert await node_b.register_pending() == 1  # its next pass: the row is there, the note goes
        with transaction(a.sessions) as s:
            assert [r.call_id for r in s.scalars(select(FaxReceived)).all()] == ["c-twice"]
        assert list(pending.folder(data).glob("*.json")) == []
        # A call node b recorded as lost (its node's slot, no pages) while node a's note waited:
        # the note's pages take that row's place, never dropped for it.
        with transaction(a.sessions) as s:
            s.add(FaxReceived(pbx_id=1, instance_id=instance_id, call_id="c-lost", ok=False,
                              reason="the node node-a that took the call stopped during it"))  # fmt: skip
        make_document(tiff, 2)
        lost = Reception("c-lost", "0507654321", "700", now, now, True, "", 2, 14400, True, "R", Media.ENGINE)
        pending.write(data, "default", instance_id, None, lost, tiff)
        assert await node_b.register_pending() == 1
        with transaction(a.sessions) as s:
            (row,) = s.scalars(select(FaxReceived).where(FaxReceived.call_id == "c-lost")).all()
            assert (row.ok, row.pages, row.calling, bool(row.document)) == (True, 2, "0507654321", True)
    finally:
        a.close()
        b.close()
