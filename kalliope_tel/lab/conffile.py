"""Minimal edits of Asterisk ``.conf`` files that keep comments and layout.

The lab renders the shipped production samples by changing only a handful of
keys (ports, bind addresses, passwords), so what is tested is what is shipped.
"""

from __future__ import annotations

import re

_SECTION = re.compile(r"^\s*\[([^\]]+)\]")
_KEY = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*=>?")


def set_option(text: str, section: str, key: str, value: str) -> str:
    """Set ``key = value`` in ``[section]``: replace the first line, else add it.

    >>> set_option("[general]\\nport = 5038\\n", "general", "port", "7000")
    '[general]\\nport = 7000\\n'
    """
    lines = text.splitlines(keepends=True)
    current: str | None = None
    header_at: int | None = None
    for i, line in enumerate(lines):
        m = _SECTION.match(line)
        if m:
            current = m.group(1).strip()
            if current == section and header_at is None:
                header_at = i
            continue
        if current == section:
            k = _KEY.match(line)
            if k and k.group(1) == key:
                lines[i] = f"{key} = {value}\n"
                return "".join(lines)
    if header_at is None:
        raise KeyError(f"section [{section}] not found")
    lines.insert(header_at + 1, f"{key} = {value}\n")
    return "".join(lines)
