"""Reconciling against Asterisk's durable CDR file (``cdr_custom.conf``:
one JSON object per line, appended as each call ends).

The file is the source of truth for calls made while no ``serve`` listened
to AMI: reading it from the stored cursor records whatever is missing. Only
whole lines are read (Asterisk may be writing the last one); the cursor
moves in the same transaction as the records of the lines before it, so a
crash re-reads at most a batch, and re-reading is harmless (records are
idempotent). A new file (rotated: another inode; truncated in place or a
new file on a reused inode: another first line, or shorter than the cursor)
is read from its start, after the rest of the rotated one. A line longer
than a batch is refused with its offset and passed, never a stop.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

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


def _head(f: BinaryIO) -> str:
    """SHA-256 of the first whole line ("" while there is none yet)."""
    f.seek(0)
    first = f.readline(BATCH_BYTES)
    return hashlib.sha256(first).hexdigest() if first.endswith(b"\n") else ""


def _same_file(cursor: CdrCursor | None, file_id: str, head: str, size: int) -> bool:
    if cursor is None or cursor.file_id != file_id or cursor.offset > size:
        return False
    return not (cursor.head and head and cursor.head != head)  # a new first line: a new file on that inode


def reconcile(
    sessions: sessionmaker[Session], server: str, path: Path, *, node: str, rater: Rater, import_past: bool = False
) -> Reconciled:
    """Record every call of ``path`` past the cursor of ``server``; after a
    rotation, first the rest of the rotated file (found beside it by its
    inode), so the calls written just before the rotation are not lost.

    A store that has never seen this Asterisk's file starts at its end: the
    lines before belong to another store or an earlier life of this one (a
    lab's earlier runs, PBXs that no longer exist). ``import_past`` reads
    them too (``billing reconcile --import-past``)."""
    result = Reconciled()
    try:
        f = path.open("rb")
    except FileNotFoundError:
        # No call ended since Asterisk started writing: nothing yet. The store
        # has seen this Asterisk, though: the file it writes next is read from
        # its start (its first calls may be made while no node runs).
        with transaction(sessions) as session:
            if session.get(CdrCursor, server) is None:
                session.add(CdrCursor(server=server, file_id="", offset=0, head=""))
        return result
    with f:
        stat = os.fstat(f.fileno())
        file_id, head = _file_id(stat), _head(f)
        with transaction(sessions) as session:
            cursor = session.get(CdrCursor, server)
            before = (cursor.file_id, cursor.offset, cursor.head) if cursor is not None else None
            same = _same_file(cursor, file_id, head, stat.st_size)
        if before is None and not import_past:
            result.offset = _first_sight(sessions, server, f, (file_id, head), stat.st_size)
            log.info("billing.cdr_file_first_seen", server=server or "default", skipped_bytes=result.offset)
            return result
        if before is not None and not same and before[0] not in ("", file_id):
            _finish_rotated(sessions, server, path, before, node, rater, result)
        start = before[1] if same and before is not None else 0
        result.offset = _read(sessions, server, f, (file_id, head), start, node, rater, result, cursor_moves=True)
    return result


def _first_sight(sessions: sessionmaker[Session], server: str, f: BinaryIO, ident: tuple[str, str], size: int) -> int:
    """The cursor at the end of the file's last whole line, nothing recorded."""
    f.seek(max(0, size - BATCH_BYTES))
    tail = f.read()
    end = size - len(tail) + tail.rfind(b"\n") + 1 if b"\n" in tail else 0
    with transaction(sessions) as session:
        _move_cursor(session, server, ident, end)
    return end


def _finish_rotated(
    sessions: sessionmaker[Session], server: str, path: Path, before: tuple[str, int, str], node: str,
    rater: Rater, result: Reconciled,
) -> None:  # fmt: skip
    file_id, offset, head = before
    for candidate in sorted(path.parent.glob(path.name + "*")):
        try:
            with candidate.open("rb") as old:
                if _file_id(os.fstat(old.fileno())) != file_id or (head and _head(old) != head):
                    continue
                log.info("billing.cdr_rotated_rest", server=server or "default", file=candidate.name, offset=offset)
                # The rotated file is complete: its last line counts even without a newline.
                _read(sessions, server, old, (file_id, head), offset, node, rater, result, cursor_moves=False,
                      complete=True)  # fmt: skip
                return
        except OSError:
            continue


def _read(
    sessions: sessionmaker[Session], server: str, f: BinaryIO, ident: tuple[str, str], offset: int, node: str,
    rater: Rater, result: Reconciled, *, cursor_moves: bool, complete: bool = False,
) -> int:  # fmt: skip
    """Whole lines from ``offset``, a batch per transaction; returns where it stopped."""
    while True:
        f.seek(offset)
        chunk = f.read(BATCH_BYTES)
        consumed = chunk.rfind(b"\n") + 1
        if not consumed:
            if len(chunk) == BATCH_BYTES:  # one line longer than a batch: refused, and passed
                offset = _skip_long_line(f, offset, server, result)
                continue
            if not (complete and chunk.strip()):
                break  # nothing, or a line Asterisk is still writing
            consumed = len(chunk)  # the rotated file's last line, without its newline
        with transaction(sessions) as session:
            position = offset
            for raw in chunk[:consumed].splitlines(keepends=True):
                _one(session, server, raw, position, node, rater, result)
                position += len(raw)
            offset += consumed
            if cursor_moves:
                _move_cursor(session, server, ident, offset)
        if complete and offset >= os.fstat(f.fileno()).st_size:
            break
    return offset


def _skip_long_line(f: BinaryIO, offset: int, server: str, result: Reconciled) -> int:
    position = offset
    while True:
        f.seek(position)
        block = f.read(BATCH_BYTES)
        if not block:
            return offset  # still being written: wait for its end
        newline = block.find(b"\n")
        if newline >= 0:
            reason = f"offset {offset}: a line of {position + newline + 1 - offset} bytes (over {BATCH_BYTES})"
            result.refused.append(reason)
            log.warning("billing.cdr_refused", server=server or "default", source="file", reason=reason)
            return position + newline + 1
        position += len(block)


def _move_cursor(session: Session, server: str, ident: tuple[str, str], offset: int) -> None:
    file_id, head = ident
    cursor = session.get(CdrCursor, server)
    if cursor is None:
        session.add(CdrCursor(server=server, file_id=file_id, offset=offset, head=head))
    elif cursor.file_id != file_id or cursor.head != head or cursor.offset < offset:
        # Another node may be ahead in the same file: never move it back.
        cursor.file_id, cursor.offset, cursor.head, cursor.updated_at = file_id, offset, head, datetime.now(UTC)


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
