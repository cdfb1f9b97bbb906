"""Which PBXs' generated Asterisk configuration may have changed.

Rows the configuration is made from (rooms, SIP accounts, templates,
outbound classes, fax instances, the hotel's, wake-up's and LAM's settings,
the PBX itself) carry the ``ReachesAsterisk`` mixin. Whenever a session
flushes a new, changed or deleted one, its PBX's ``config_serial`` goes up in
the same transaction; every ``serve`` node compares the serials with those
it applied and renders, writes and reloads what changed (``autoapply``). So
a change made in the browser or the CLI reaches Asterisk on its own, and a
rolled-back change bumps nothing.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

from sqlalchemy import Engine, event, update
from sqlalchemy.orm import Session

from kalliope_tel.db.base import ReachesAsterisk
from kalliope_tel.tenancy.models import Pbx


def _touched(session: Session) -> set[int]:
    pbxs: set[int] = set()
    for obj in chain(session.new, session.dirty, session.deleted):
        if not isinstance(obj, ReachesAsterisk):
            continue
        if obj in session.dirty and not session.is_modified(obj):
            continue  # loaded and looked at, not changed
        pbxs.update(obj.config_pbx_ids(session))
    return pbxs


def _after_flush(session: Session, _context: Any) -> None:
    pbxs = _touched(session)
    if pbxs:
        # On the connection: an ORM update here would flush again.
        session.connection().execute(
            update(Pbx).where(Pbx.id.in_(sorted(pbxs))).values(config_serial=Pbx.config_serial + 1)
        )


def install(_engine: Engine) -> None:
    """Watch every session's flushes (once per process)."""
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
