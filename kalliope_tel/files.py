"""Files kalliope-tel creates are its own: the store, received faxes, reports.

The SQLite store holds SIP digest hashes (HA1 registers a phone as well as
its password does) and guests' names; a received fax is someone's document.
So the process creates files readable by its owner only (umask 077), and the
store is made so even when it was created before. Generated Asterisk files
are the exception: Asterisk's group must read them (see ``asterisk.apply``).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import uuid
from pathlib import Path
from typing import BinaryIO

PRIVATE_UMASK = 0o077


def private_umask() -> None:
    os.umask(PRIVATE_UMASK)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) owner-only; an existing one is left as it is."""
    if not path.exists():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def private_file(path: Path) -> None:
    """Create ``path`` empty and owner-only if missing; tighten it if others can read it."""
    private_dir(path.parent)
    # Never open an existing file: closing any descriptor of a file drops
    # every POSIX lock this process holds on it, and SQLite's locks on an
    # open database are such locks. A second engine made in a process whose
    # first engine was reading the same SQLite file broke that engine's WAL
    # read locks: it went on reading an old snapshot, blind to later commits.
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        with contextlib.suppress(PermissionError):  # not ours: leave it, the operator chose
            os.chmod(path, mode & 0o700)


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``path`` whole or not at all: a temporary file beside it (never
    an existing one), synced, then renamed over. Owner-only by default; a
    report or an archived fax is never left half written."""
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


_FILE_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def safe_file_name(value: str, limit: int = 120, default: str = "document") -> str:
    """The one sanitiser for names that come from outside (an upload's or an
    attachment's name, a call id): the last path component only, letters,
    digits and ``._+-`` (anything else one ``_``), never hidden or empty, at
    most ``limit`` characters with the suffix kept (the suffix picks the
    converter). Used for files on disk and for names in mail headers alike."""
    base = value.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _FILE_UNSAFE.sub("_", base).lstrip(".")
    if len(cleaned) > limit:
        stem, dot, suffix = cleaned.rpartition(".")
        keep = f"{dot}{suffix}" if dot and stem and len(suffix) <= 10 else ""
        cleaned = cleaned[: limit - len(keep)] + keep
    return cleaned or default


def read_bounded(stream: BinaryIO, limit: int) -> bytes | None:
    """At most ``limit`` bytes of an upload; None when it holds more (the
    caller refuses it, having read one byte past the limit, not the rest)."""
    data = stream.read(limit + 1)
    return None if len(data) > limit else data


def decode_text(data: bytes) -> str:
    """A text upload: UTF-8 (with or without a BOM), else Windows' own
    encoding, which spreadsheets on Windows save CSV in."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")
