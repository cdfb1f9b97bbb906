"""A real OpenSSH server on loopback for SFTP tests: its own host key, a
client key made by the test, internal-sftp, key authentication only."""

from __future__ import annotations

import getpass
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.fax_service_support import free_port


@dataclass
class SftpServer:
    port: int
    user: str
    key_file: Path
    known_hosts: Path
    root: Path
    proc: subprocess.Popen[bytes] | None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


def start_sshd(folder: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(folder / "sshd_config")], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "sshd exited"
            assert time.monotonic() < deadline, "sshd never listened"
            time.sleep(0.1)


@contextmanager
def sftp_server(folder: Path) -> Iterator[SftpServer]:
    folder.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(exist_ok=True)  # OpenSSH's privilege separation directory
    _keygen(folder / "host_key")
    _keygen(folder / "client_key")
    (folder / "authorized_keys").write_text((folder / "client_key.pub").read_text())
    port = free_port()
    host_pub = (folder / "host_key.pub").read_text().split()[:2]
    (folder / "known_hosts").write_text(f"[127.0.0.1]:{port} {' '.join(host_pub)}\n")
    user = getpass.getuser()
    (folder / "sshd_config").write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {folder / 'host_key'}",
                f"AuthorizedKeysFile {folder / 'authorized_keys'}",
                f"PidFile {folder / 'sshd.pid'}",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "PermitRootLogin prohibit-password",
                f"AllowUsers {user}",
                "Subsystem sftp internal-sftp",
                "",
            ]
        )
    )
    (folder / "remote").mkdir()
    server = SftpServer(port, user, folder / "client_key", folder / "known_hosts", folder / "remote", None)
    server.proc = start_sshd(folder, port)
    try:
        yield server
    finally:
        server.stop()
