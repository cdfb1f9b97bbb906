"""Write generated configuration where Asterisk includes it, then reload.

Files are replaced atomically (write to a temporary name, then rename) so a
reload never reads half a file; unchanged files are left alone, and Asterisk
is reloaded only for what changed. The files hold SIP digest hashes (HA1 is
enough to register as the phone), so they are created readable by their
owner and by Asterisk's group only, never by everyone.
"""

from __future__ import annotations

import contextlib
import grp
import os
from pathlib import Path

from kalliope_tel.asterisk.ami.client import AmiClient

# Reload command by the generated file's name prefix (per PBX files:
# kalliope/extensions_<slug>.conf, kalliope/pjsip_<slug>.conf).
RELOADS = {
    "kalliope/extensions_": "dialplan reload",
    "kalliope/pjsip_": "module reload res_pjsip.so",
    # ARI outbound websockets (reloading res_ari reloads websocket_client.conf too).
    "kalliope/ari_outbound": "module reload res_ari.so",
    "kalliope/websocket_client_": "module reload res_ari.so",
}
FILE_MODE = 0o640
DIR_MODE = 0o750
ASTERISK_GROUP = "asterisk"


def _asterisk_gid() -> int | None:
    try:
        return grp.getgrnam(ASTERISK_GROUP).gr_gid
    except KeyError:
        return None


def _secure(path: Path, mode: int) -> None:
    os.chmod(path, mode)
    gid = _asterisk_gid()
    if gid is not None:
        with contextlib.suppress(PermissionError):  # not root: our own group stays
            os.chown(path, -1, gid)


def write_private(target: Path, text: str) -> None:
    """Replace ``target`` atomically with ``text``, mode 0640 from the first byte."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    _secure(tmp, FILE_MODE)
    os.replace(tmp, target)


def write_files(directory: Path, files: dict[str, str]) -> list[str]:
    """Write the files; return the names whose content changed."""
    directory.mkdir(parents=True, exist_ok=True)
    changed = []
    for name in sorted(files):
        target = directory / name
        if target.parent != directory and not target.parent.exists():
            target.parent.mkdir(parents=True)
            _secure(target.parent, DIR_MODE)
        if target.is_file() and target.read_text() == files[name]:
            continue
        write_private(target, files[name])
        changed.append(name)
    return changed


def remove_files(directory: Path, names: list[str]) -> list[str]:
    """Delete generated files (a PBX removed); return the names that existed."""
    removed = []
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            (directory / name).unlink()
            removed.append(name)
    return removed


def reload_commands(changed: list[str]) -> list[str]:
    return sorted({cmd for name in changed for prefix, cmd in RELOADS.items() if name.startswith(prefix)})


# A reload re-reads every PBX's files: 60 s at 50,000 endpoints (bench
# provision); the usual 10 s action timeout failed it over and over.
RELOAD_TIMEOUT = 900.0


async def reload(ami: AmiClient, changed: list[str]) -> list[str]:
    """Run the reload command of each changed file; return their outputs."""
    return [await ami.command(command, timeout=RELOAD_TIMEOUT) for command in reload_commands(changed)]
