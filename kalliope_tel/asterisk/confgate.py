"""The one gate for everything kalliope-tel writes into Asterisk configuration.

Theory of operation: Asterisk's config parser (``main/config.c``) reads a
file line by line; ``;`` starts a comment (``;--`` a block comment that can
swallow the following lines), ``\\`` escapes, ``[`` at a line's start opens a
section and ``#include``/``#exec`` at a line's start pull in other files. The
dialplan parser then splits application data on ``,``, expands ``${...}`` and
``$[...]``, and ``Dial`` splits devices on ``&``. Anything that carries one of
those characters, or a line break, into a generated file can add a context,
an endpoint or a ``System()`` call (issue 11 reproduced exactly that with a
room name).

So there are two kinds of value and two kinds of function here:

* **identifiers** (PBX slugs, extensions, patterns, context names, SIP user
  names): validated with a *full* match against a strict pattern, refused
  otherwise. ``re.match`` with ``$`` lets ``"101\\n"`` through; ``fullmatch``
  does not. Services call these at their boundary; the generator calls them
  again on every value it writes, so a row written by an older version can
  never reach a file.
* **free text** (names, descriptions, caller-ID labels, comments): made
  harmless for the place it goes (``comment`` and ``callerid_label``), never
  refused, so a guest's or a hotel's naming is kept as far as it can be.

Nothing else in the project formats a value into Asterisk configuration.
"""

from __future__ import annotations

import re
import unicodedata

from kalliope_tel.catalogue import Term
from kalliope_tel.errors import KalliopeError


class UnsafeValue(KalliopeError):
    """A value that cannot be written into Asterisk configuration as it is."""


# One name part of a context, endpoint or section: letters, digits, _ and -.
_IDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,79}")
# A PBX slug: no '-', so '<slug>-<rest>' names always split at the first '-'.
_SLUG = re.compile(r"[a-z][a-z0-9_]{0,29}")
_EXTENSION = re.compile(r"[0-9]{2,8}")
_NUMBER = re.compile(r"[0-9*#+]{1,20}")
# Dialplan patterns: a literal number, or '_' then pattern characters.
_PATTERN = re.compile(r"_[0-9XZN.!\[\]\-+*#]{1,40}|[0-9*#+]{1,20}")
_SIP_USER = re.compile(r"[A-Za-z0-9_.\-]{2,64}")
# Asterisk sound names: path parts under the sounds directory, no '..'.
_SOUND = re.compile(r"(?!.*\.\.)[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-.]+)*")


def _full(regex: re.Pattern[str], value: object, what: str, rule: str, **params: object) -> str:
    # ``rule`` is the catalogue code of what the value must look like;
    # ``what`` a catalogue code (what.*) naming the value, in the reader's language.
    if not isinstance(value, str) or regex.fullmatch(value) is None:
        raise UnsafeValue(rule, what=Term(what), value=repr(value), **params)
    return value


def identifier(value: object, what: str = "what.name") -> str:
    return _full(_IDENT, value, what, "gate.identifier")


def slug(value: object, what: str = "what.pbx_slug") -> str:
    return _full(_SLUG, value, what, "gate.slug")


def extension(value: object, what: str = "what.extension") -> str:
    return _full(_EXTENSION, value, what, "gate.extension")


def number(value: object, what: str = "what.number") -> str:
    return _full(_NUMBER, value, what, "gate.number")


def pattern(value: object) -> str:
    return _full(_PATTERN, value, "what.dialplan_pattern", "gate.pattern")


def sip_user(value: object) -> str:
    return _full(_SIP_USER, value, "what.sip_user", "gate.sip_user")


def sound(value: object) -> str:
    return _full(_SOUND, value, "what.sound", "gate.sound")


# A websocket URI Asterisk connects to: scheme, host, port, path; nothing
# that the config parser or a URI could read as something else.
_WS_URI = re.compile(r"wss?://[A-Za-z0-9.\-]{1,253}(:[0-9]{1,5})?(/[A-Za-z0-9._~\-/]*)?")
# A password written as a config value: printable ASCII without ';' (comment),
# '\\' (escape), quotes or spaces at either end that the parser would trim.
_SECRET = re.compile(r"[!#-:<-\[\]-~]{12,128}")


# A carrier's address: a host name or IPv4 address, and an optional port.
_SIP_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.\-]{0,252})(:[0-9]{1,5})?")
# A carrier's password: the secret's characters, any length a carrier hands out.
_SIP_PASSWORD = re.compile(r"[!#-:<-\[\]-~]{1,128}")


def sip_host(value: object) -> str:
    found = _full(_SIP_HOST, value, "what.sip_host", "gate.sip_host")
    port = found.partition(":")[2]
    if port and not 0 < int(port) < 65536:
        raise UnsafeValue("gate.sip_host", what=Term("what.sip_host"), value=repr(value))
    return found


def sip_password(value: object) -> str:
    """Refused without the value in the message: it is a secret."""
    if not isinstance(value, str) or _SIP_PASSWORD.fullmatch(value) is None:
        raise UnsafeValue("gate.sip_password", what=Term("what.password"))
    return value


def websocket_uri(value: object) -> str:
    return _full(_WS_URI, value, "what.websocket_uri", "gate.websocket_uri")


def secret(value: object, what: str = "what.password") -> str:
    return _full(_SECRET, value, what, "gate.secret")


def hex_digest(value: object, length: int = 32) -> str:
    return _full(re.compile(f"[0-9a-f]{{{length}}}"), value, "what.digest", "gate.hex_digest", length=length)


def _printable(text: str) -> str:
    """Every control, line or paragraph separator becomes a space.

    Unicode categories Cc (C0, DEL, C1 including NEL), Zl and Zp: all that any
    reader of the file (Asterisk, an editor, Python's ``splitlines``) may take
    as the end of a line.
    """
    return "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in text)


def comment(text: object, limit: int = 120) -> str:
    """Free text for a ``; ...`` comment line: one line, no ``;`` (no block
    comment can start), no ``\\`` (nothing escaped into the next line)."""
    clean = _printable(str(text)).replace(";", ",").replace("\\", "/")
    return " ".join(clean.split())[:limit]


def callerid_label(text: object, limit: int = 60) -> str:
    """Free text for the name part of ``callerid = "NAME" <NUM>``.

    Quotes and angle brackets would end the name or start the number, ``;``
    a comment, ``\\`` an escape, ``,`` and ``|`` are argument separators
    where a caller ID is passed on in the dialplan; ``$`` could start an
    expression where the label is copied into a variable.
    """
    clean = _printable(str(text))
    clean = re.sub(r'["<>;\\,|$\[\]{}]', " ", clean)
    return " ".join(clean.split())[:limit] or "-"


def section(*parts: str) -> str:
    """A section (context, endpoint) name built from validated parts."""
    name = "-".join(parts)
    identifier(name, "section name")
    return name
