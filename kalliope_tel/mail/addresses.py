"""The gate every value passes before it reaches a mail header.

Addresses are checked (one plain ``local@domain``, no display name, no
comments, nothing that could end a header); free text is made harmless
(control characters and line breaks become spaces); attachment file names
keep only safe characters. ``compose.message`` builds messages from these
alone.
"""

from __future__ import annotations

import re
import unicodedata

# A practical address: what users type and mail servers accept; the local
# part may not start or end with a dot, the domain is dotted labels.
_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(f"{_LOCAL}@{_DOMAIN}")


def check_address(value: str) -> str:
    """``value`` if it is one plain e-mail address; ValueError says why not."""
    if not isinstance(value, str) or not value:
        raise ValueError("an address is required")
    if len(value) > 254:
        raise ValueError("at most 254 characters")
    if not _ADDRESS.fullmatch(value):
        raise ValueError(f"{value!r} is not a plain address like name@example.com")
    return value


def header_text(value: str, limit: int = 200) -> str:
    """Free text for a header (subject): one line, no control characters."""
    cleaned = "".join(" " if unicodedata.category(c)[0] in ("C", "Z") and c != " " else c for c in value)
    return " ".join(cleaned.split())[:limit]
