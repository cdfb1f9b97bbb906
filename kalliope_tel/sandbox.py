"""A jail for programs that read documents written by strangers.

LibreOffice and Ghostscript parse formats rich enough to reach outside the
document: an ODT section linked to ``file:///proc/self/environ``, a DOCX
``INCLUDETEXT`` field, a PostScript ``file`` operator. Whatever they read
ends up on a fax page that the sender downloads from the register. So they
run under bubblewrap (``bwrap``, Debian's package; why it and not
firejail or nsjail: ``docs/dependencies.md``):

- no network (a network namespace of its own, only loopback inside);
- a file system of ``/usr`` and the few ``/etc`` entries the converters
  read (fonts, LibreOffice's registry, Ghostscript's font map), read-only,
  plus the document's own folder and a scratch folder, nothing else: no
  data directory, no ``/home``, no ``/proc`` of the host's processes;
- a user of its own (``kt-convert``, or ``nobody`` where bootstrap has not
  made it) when the node runs as root, and an empty environment;
- the resource limits of the process that starts it (``Limits.apply`` in
  the converter process), inherited by everything inside.
"""

from __future__ import annotations

import os
import pwd
import resource
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kalliope_tel.errors import KalliopeError

CONVERT_USER = "kt-convert"
# Where jails' scratch folders are made: the jail's user must be able to pass
# through every folder above its own (a private data directory would not let
# it), so a world-traversable place; the converter process moves it into a
# folder of its own there, which its parent removes whatever happens.
JAIL_BASE = Path("/tmp")  # noqa: S108
# Read by the converters, never written; absent entries are left out.
_READ_ONLY_ETC = ("/etc/fonts", "/etc/libreoffice", "/etc/ghostscript", "/etc/alternatives", "/etc/ld.so.cache")


class SandboxUnavailable(KalliopeError):
    """bubblewrap is missing or cannot make a namespace on this machine."""


@dataclass(frozen=True)
class Limits:
    """What one conversion may take: address space, CPU seconds, the size of
    any file it writes, and wall-clock time (enforced by the caller)."""

    memory_bytes: int = 1024 << 20
    cpu_seconds: int = 120
    file_bytes: int = 512 << 20
    wall_seconds: float = 180.0

    def apply(self) -> None:
        """Set on the calling process; every child inherits them. Called first
        thing in the converter process (no preexec_fn: serve has threads)."""
        for which, value in (
            (resource.RLIMIT_AS, self.memory_bytes),
            (resource.RLIMIT_CPU, self.cpu_seconds),
            (resource.RLIMIT_FSIZE, self.file_bytes),
            (resource.RLIMIT_CORE, 0),
        ):
            resource.setrlimit(which, (value, value))


def jail_user() -> tuple[int, int] | None:
    """The (uid, gid) converters run as, or None when this process is not
    root (it is then unprivileged already, and the namespace separates it)."""
    if os.geteuid() != 0:
        return None
    for name in (CONVERT_USER, "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    return 65534, 65534


def hand_over(folder: Path) -> None:
    """Make ``folder`` writable by the jail's user (the scratch folder)."""
    user = jail_user()
    if user is not None:
        os.chown(folder, *user)
    folder.chmod(0o700)


def jailed(
    argv: Sequence[str],
    *,
    read_only: Sequence[Path] = (),
    writable: Sequence[Path] = (),
    env: dict[str, str] | None = None,
) -> list[str]:
    """``argv`` wrapped to run in the jail, each folder at its own path inside.

    The program sees its documents at the same paths as outside, so file
    names in its messages read the same."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed; scripts/bootstrap.sh installs it")
    command: list[str] = []
    user = jail_user()
    if user is not None:
        setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
        command += [setpriv, f"--reuid={user[0]}", f"--regid={user[1]}", "--clear-groups", "--"]
    command += [
        bwrap,
        "--unshare-all",  # network, IPC, PID, UTS, cgroup and user namespaces
        "--die-with-parent",
        "--new-session",  # no TIOCSTI into the caller's terminal
        "--clearenv",
        "--ro-bind",
        "/usr",
        "/usr",
        "--symlink",
        "usr/lib",
        "/lib",
        "--symlink",
        "usr/lib64",
        "/lib64",
        "--symlink",
        "usr/bin",
        "/bin",
        "--symlink",
        "usr/sbin",
        "/sbin",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",  # noqa: S108 - an empty tmpfs of the jail's own, not the host's /tmp
    ]
    for entry in _READ_ONLY_ETC:
        if os.path.exists(entry):
            command += ["--ro-bind", entry, entry]
    for folder in read_only:
        command += ["--ro-bind", str(folder), str(folder)]
    for folder in writable:
        command += ["--bind", str(folder), str(folder)]
    for key, value in {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **(env or {})}.items():
        command += ["--setenv", key, value]
    return [*command, *argv]
