"""Archival copies of fax documents and reports: to a local directory or to
an SFTP server, in the clear or encrypted (``crypto``).

The path under an archival path is built from the instance's archival
settings: ``[in|out]/<prefix>/<custom path>/<suffix>/[in|out]/<file>``, the
``in``/``out`` part before the prefix or after the suffix as the instance's
separation says. Files are written under a temporary name and renamed, so a
reader never sees half a document.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from zoneinfo import ZoneInfo

from kalliope_tel.fax import crypto
from kalliope_tel.fax.models import ArchivePath, Direction, Encryption, FaxInstance, PathPart, RemoteStorage, Separation
from kalliope_tel.files import atomic_write

MAX_NAME = 200


def _part(part: PathPart, instance: FaxInstance, pbx_slug: str, when: datetime) -> str:
    match part:
        case PathPart.PBX:
            return pbx_slug
        case PathPart.INSTANCE:
            return instance.name
        case PathPart.SELECTION:
            return instance.selection
        case PathPart.YEAR:
            return f"{when:%Y}"
        case PathPart.YEAR_MONTH:
            return f"{when:%Y-%m}"
        case PathPart.DATE:
            return f"{when:%Y-%m-%d}"
    return ""


def relative_dir(
    instance: FaxInstance, pbx_slug: str, timezone: str, direction: Direction, when: datetime
) -> PurePosixPath:
    local = when.astimezone(ZoneInfo(timezone))
    side = "in" if direction is Direction.INBOUND else "out"
    parts: list[str] = []
    if instance.archive_separation is Separation.BEFORE_PREFIX:
        parts.append(side)
    parts.append(_part(instance.archive_prefix, instance, pbx_slug, local))
    parts.extend(instance.archive_path.split("/") if instance.archive_path else [])
    parts.append(_part(instance.archive_suffix, instance, pbx_slug, local))
    if instance.archive_separation is Separation.AFTER_SUFFIX:
        parts.append(side)
    return PurePosixPath(*[p for p in parts if p]) if any(parts) else PurePosixPath(".")


def sealed(data: bytes, name: str, encryption: Encryption, key_text: str) -> tuple[bytes, str]:
    if encryption is Encryption.BUILTIN:
        return crypto.encrypt(crypto.load_key(key_text), data), name + crypto.SUFFIX
    return data, name


@dataclass(frozen=True)
class Written:
    where: str  # what the register shows: a local path or storage:path


def write_local(base: Path, rel: PurePosixPath, name: str, data: bytes) -> Written:
    folder = base / rel
    folder.mkdir(parents=True, exist_ok=True, mode=0o750)
    atomic_write(folder / name, data, 0o640)  # the archive's group reads it
    return Written(str(folder / name))


async def write_remote(
    storage: RemoteStorage, rel: PurePosixPath, name: str, data: bytes, timeout: float = 30
) -> Written:
    import asyncssh

    conn = await asyncssh.connect(
        storage.host,
        port=storage.port,
        username=storage.username,
        client_keys=[storage.key_file],
        known_hosts=storage.known_hosts,  # the host key is checked: no trust on first use
        agent_path=None,
        password=None,
        connect_timeout=timeout,
    )
    try:
        # No context managers: their exits wait for the peer to close, and a
        # peer that stalled never does; the caller's time limit (a
        # cancellation) must end the copy at once.
        sftp = await conn.start_sftp_client()
        folder = PurePosixPath(storage.directory) / rel
        await sftp.makedirs(str(folder), exist_ok=True)
        temp = folder / f".{name}.{uuid.uuid4().hex}.part"
        remote = await sftp.open(str(temp), "wb")
        await remote.write(data)
        await remote.close()
        # Written whole under a temporary name, then renamed: a copy cut off
        # half way never stands under the final name, and a retry replaces it.
        await sftp.posix_rename(str(temp), str(folder / name))
    finally:
        conn.abort()
    return Written(f"{storage.name}:{folder / name}")


def describe(path: ArchivePath, storage: RemoteStorage | None) -> str:
    where = path.directory if storage is None else f"sftp://{storage.username}@{storage.host}:{storage.port}"
    return f"#{path.position} {where} ({path.encryption.value})"
