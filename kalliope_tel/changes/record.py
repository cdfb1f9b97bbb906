"""Write change rows in the writer's transaction, and ring this process's bell on commit.

ORM writes are seen by a session hook (rows marked ``RoomFeed``: rooms,
stays, alarms, cleaning events; new, changed or deleted); the few bulk ``UPDATE``s that bypass the
ORM call ``record_rooms`` themselves (the phone's cleaning code, alarm
cancellation).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any

from sqlalchemy import Connection, Engine, Integer, bindparam, event, insert
from sqlalchemy.orm import Session

from kalliope_tel.changes.models import Change, RoomFeed

_FLAG = "kalliope_live_changes"
_bells: list[Callable[[], None]] = []
_lock = threading.Lock()

# Prebuilt for the hot paths (the cleaning service code runs it per call).
INSERT_CHANGE = insert(Change).values(
    pbx_id=bindparam("pbx_id", type_=Integer), room_id=bindparam("room_id", type_=Integer)
)


def record_rooms(conn: Connection | Session, rooms: Iterable[tuple[int, int]]) -> None:
    """Note that these ``(pbx_id, room_id)`` changed, in the caller's transaction."""
    rows = [{"pbx_id": p, "room_id": r} for p, r in sorted(set(rooms))]
    if not rows:
        return
    connection = conn.connection() if isinstance(conn, Session) else conn
    connection.execute(INSERT_CHANGE, rows)
    connection.info[_FLAG] = True


def _rooms_touched(session: Session) -> set[tuple[int, int]]:
    rooms: set[tuple[int, int]] = set()
    for obj in chain(session.new, session.dirty, session.deleted):
        if not isinstance(obj, RoomFeed):
            continue
        if obj in session.dirty and not session.is_modified(obj) and not obj.feed_always:
            continue  # loaded and looked at, not changed
        key = obj.feed_room()
        if key is not None:
            rooms.add(key)
    return rooms


def _after_flush(session: Session, _context: Any) -> None:
    rooms = _rooms_touched(session)
    if rooms:
        record_rooms(session, rooms)


def _on_commit(conn: Connection) -> None:
    if conn.info.pop(_FLAG, False):
        ring()


def _on_rollback(conn: Connection) -> None:
    conn.info.pop(_FLAG, None)


def install(engine: Engine) -> None:
    """Watch this engine's sessions and commits (once per engine)."""
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
    if not event.contains(engine, "commit", _on_commit):
        event.listen(engine, "commit", _on_commit)
        event.listen(engine, "rollback", _on_rollback)


def add_bell(bell: Callable[[], None]) -> Callable[[], None]:
    """Call ``bell`` (from any thread) after each commit that wrote changes; returns the remover."""
    with _lock:
        _bells.append(bell)

    def remove() -> None:
        with _lock:
            if bell in _bells:
                _bells.remove(bell)

    return remove


def ring() -> None:
    with _lock:
        bells = list(_bells)
    for bell in bells:
        bell()
