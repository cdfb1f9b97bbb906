"""Local times as people type them, in a PBX's time zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from kalliope_tel.errors import KalliopeError


def parse_local_time(text: str, tz: str) -> datetime:
    """'YYYY-MM-DD HH:MM' (or with a T, as browsers send it) in the PBX's time
    zone; an explicit offset wins."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise KalliopeError("time.format", value=repr(text[:40])) from None
    return value if value.tzinfo else value.replace(tzinfo=ZoneInfo(tz))
