"""A real Dovecot (Debian's package) on loopback, for the Mail2Fax tests and
benchmark: IMAPS and POP3S on a self-signed certificate, and LMTP, through
which messages are delivered the way a mail server hands them over (never
written into the mailbox files).

Every instance has its own folder, configuration, ports and mail users, so
several run side by side (pytest-xdist). Needs root (Dovecot drops to its
own system users) and the packages dovecot-imapd, dovecot-pop3d,
dovecot-lmtpd and openssl.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

DOVECOT = "/usr/sbin/dovecot"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def available() -> str | None:
    """Why a lab Dovecot cannot run here, or None."""
    if not Path(DOVECOT).exists():
        return "Dovecot is not installed (scripts/bootstrap.sh dev installs it)"
    if os.geteuid() != 0:
        return "a lab Dovecot needs root"
    if not Path("/usr/lib/dovecot/pop3").exists() or not Path("/usr/lib/dovecot/lmtp").exists():
        return "dovecot-pop3d or dovecot-lmtpd is missing"
    return None


@dataclass
class LabDovecot:
    folder: Path
    imaps_port: int = field(default_factory=_free_port)
    pop3s_port: int = field(default_factory=_free_port)
    lmtp_port: int = field(default_factory=_free_port)
    passwords: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    # The mail homes and the password file, which Dovecot's unprivileged
    # processes read: in a folder of their own, since test folders are 0700.
    share: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kt-dovecot-")))
    # Dovecot's sockets: a Unix socket path holds at most 107 bytes, and
    # "<folder>/run/token-login/imap-urlauth" under a pytest-xdist folder did
    # not fit ("File name too long"). A short folder of their own.
    sockets: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kt-dv-")))

    @property
    def cert(self) -> Path:
        """The server's self-signed certificate (clients trust this file)."""
        return self.folder / "cert.pem"

    def add_user(self, user: str, password: str) -> None:
        """A mailbox (its login is its address); Dovecot rereads the file itself."""
        self.passwords[user] = password
        lines = [f"{u}:{{PLAIN}}{p}::::::" for u, p in self.passwords.items()]
        path = self.share / "users"
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o640)
        shutil.chown(path, group="dovecot")

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if not self.cert.exists():
            self._make_certificate()
        self.sockets.chmod(0o755)  # the login processes (dovenull) reach their sockets through it
        shutil.chown(self.share, "dovecot", "dovecot")
        self.share.chmod(0o750)
        if not (self.share / "users").exists():
            self.add_user("nobody@lab.invalid", "unused")
        home = self.share / "home"
        home.mkdir(exist_ok=True)
        shutil.chown(home, "dovecot", "dovecot")
        (self.folder / "dovecot.conf").write_text(self._config())
        self.proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.folder / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=open(self.folder / "stderr.log", "ab"),  # noqa: SIM115 - owned by the child
        )
        deadline = time.monotonic() + 15
        for port in (self.imaps_port, self.pop3s_port, self.lmtp_port):
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"Dovecot did not start: {self.log_tail()}") from None
                    time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None
        # Its children (login processes) go with the master; give the ports back.
        time.sleep(0.2)

    def remove(self) -> None:
        """Stop, and delete the mailboxes (the instance folder is the caller's)."""
        self.stop()
        shutil.rmtree(self.share, ignore_errors=True)
        shutil.rmtree(self.sockets, ignore_errors=True)

    def restart(self) -> None:
        self.stop()
        self.start()

    def imap_processes(self) -> list[int]:
        """The imap processes serving logged-in clients (to freeze one: a hung server)."""
        if self.proc is None:
            return []
        out = subprocess.run(
            ["ps", "-o", "pid=,args=", "--ppid", str(self.proc.pid)], capture_output=True, text=True, check=False
        ).stdout
        return [int(line.split()[0]) for line in out.splitlines() if line.split()[1].endswith("/imap")]

    def deliver(self, recipient: str, message: bytes, sender: str = "mailer@lab.invalid") -> None:
        """Hand a message to Dovecot over LMTP, as a mail server does."""
        with smtplib.LMTP("127.0.0.1", self.lmtp_port, timeout=15) as lmtp:
            refused = lmtp.sendmail(sender, [recipient], message)
        if refused:
            raise RuntimeError(f"LMTP refused {recipient}: {refused}")

    def log_tail(self, lines: int = 30) -> str:
        out = []
        for name in ("dovecot.log", "stderr.log"):
            path = self.folder / name
            if path.exists():
                out.extend(path.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(out)

    def _make_certificate(self) -> None:
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1,DNS:localhost",
                "-keyout",
                str(self.folder / "key.pem"),
                "-out",
                str(self.cert),
            ],
            check=True,
            capture_output=True,
        )
        (self.folder / "key.pem").chmod(0o600)

    def _config(self) -> str:
        d = self.folder
        mail = pwd.getpwnam("dovecot")
        dh = "/usr/share/dovecot/dh.pem"
        return f"""
base_dir = {self.sockets}/run
state_dir = {self.sockets}/state
instance_name = kt-dovecot-{self.imaps_port}
protocols = imap pop3 lmtp
listen = 127.0.0.1
log_path = {d}/dovecot.log
ssl = required
ssl_cert = <{self.cert}
ssl_key = <{d}/key.pem
{"ssl_dh = <" + dh if Path(dh).exists() else ""}
auth_mechanisms = plain login
first_valid_uid = {mail.pw_uid}
mail_location = maildir:~/Maildir
mail_uid = {mail.pw_uid}
mail_gid = {mail.pw_gid}
pop3_uidl_format = %08Xv%08Xu
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.share}/users
}}
userdb {{
  driver = static
  args = uid={mail.pw_uid} gid={mail.pw_gid} home={self.share}/home/%u allow_all_users=yes
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = {self.pop3s_port}
    ssl = yes
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.lmtp_port}
  }}
}}
protocol lmtp {{
  ssl = no
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Processed {{
    auto = create
  }}
}}
"""
