"""What a fax owes after its call, on both databases, with real peers: the
archive to a local path and to a real OpenSSH server over SFTP with built-in
encryption (decrypted back by the CLI, byte for byte), and mail through a
real SMTP server. A peer that is down delays a delivery; nothing is lost."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, update

from kalliope_tel.config import Settings
from kalliope_tel.container import Container
from kalliope_tel.db.base import utcnow
from kalliope_tel.db.engine import transaction
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
