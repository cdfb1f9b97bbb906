"""Reconciling against Asterisk's durable CDR file (``cdr_custom.conf``:
one JSON object per line, appended as each call ends).

The file is the source of truth for calls made while no ``serve`` listened
to AMI: reading it from the stored cursor records whatever is missing. Only
whole lines are read (Asterisk may be writing the last one); the cursor
moves in the same transaction as the records of the lines before it, so a
crash re-reads at most a batch, and re-reading is harmless (records are
idempotent). A new file (rotated: another inode, or shorter than the
cursor) is read from its start.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import structlog
from sqlalchemy.orm import Session, sessionmaker

from kalliope_tel.billing.models import CdrCursor
from kalliope_tel.billing.records import BadCdr, Rater, is_ours, parse, record
from kalliope_tel.db.engine import transaction

log = structlog.get_logger(__name__)

# Read and commit per 64 KiB (about 170 calls): each commit holds SQLite's
# write lock, and a node catching up on a large file must not keep the web's
# logins and the wake-up scheduler waiting (a MiB per transaction took
# seconds on a busy machine).
BATCH_BYTES = 64 << 10


@dataclass
class Reconciled:
    lines: int = 0
    ours: int = 0
    recorded: int = 0  # new records (the rest were there already)
    refused: list[str] = field(default_factory=list)  # "offset N: reason"
    offset: int = 0


def _file_id(stat: os.stat_result) -> str:
    return f"{stat.st_dev}:{stat.st_ino}"


def reconcile(sessions: sessionmaker[Session], server: str, path: Path, *, node: str, rater: Rater) -> Reconciled:
    """Record every call of ``path`` past the cursor of ``server``."""
    result = Reconciled()
    try:
        stat = path.stat()
    except FileNotFoundError:
        return result  # no call ended since Asterisk started writing: nothing yet
    file_id = _file_id(stat)
    with transaction(sessions) as session:
        cursor = session.get(CdrCursor, server)
        start = cursor.offset if cursor is not None and cursor.file_id == file_id else 0
    if start > stat.st_size:
        start = 0  # truncated in place (copytruncate): a new file
    offset = start
    with path.open("rb") as f:
        while True:
            f.seek(offset)
            chunk = f.read(BATCH_BYTES)
            end = chunk.rfind(b"\n")
            if end < 0:
                break  # nothing, or a line Asterisk is still writing
            with transaction(sessions) as session:
                position = offset
                for raw in chunk[: end + 1].splitlines(keepends=True):
                    _one(session, server, raw, position, node, rater, result)
                    position += len(raw)
                offset += end + 1
                cursor = session.get(CdrCursor, server)
                if cursor is None:
                    session.add(CdrCursor(server=server, file_id=file_id, offset=offset))
                elif cursor.file_id != file_id or cursor.offset < offset:
                    # Another node may be ahead: never move it back.
                    cursor.file_id, cursor.offset, cursor.updated_at = file_id, offset, datetime.now(UTC)
    result.offset = offset
    return result


def _one(session: Session, server: str, raw: bytes, position: int, node: str, rater: Rater, out: Reconciled) -> None:
    out.lines += 1
    line = raw.strip()
    if not line:
        return
    try:
        fields = json.loads(line)
        if not isinstance(fields, dict):
            raise BadCdr("not a JSON object")
        if not is_ours(fields):
            return
        out.ours += 1
        with session.begin_nested():
            if record(session, server, parse(fields), source="file", node=node, rater=rater):
                out.recorded += 1
    except (ValueError, BadCdr) as exc:
        # The line stays in Asterisk's file; the log says where.
        reason = f"offset {position}: {exc}"
        out.refused.append(reason)
        log.warning("billing.cdr_refused", server=server or "default", source="file", reason=reason)
