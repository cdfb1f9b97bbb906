"""FastAGI wire format as pure functions.

Asterisk opens with the ``agi_*`` environment, one ``key: value`` per line,
ended by an empty line::

    agi_network: yes
    agi_network_script: test?room=101
    agi_request: agi://127.0.0.1:4573/test?room=101
    agi_channel: Local/s@lab-00000000;2
    agi_arg_1: first

Each command then gets one reply line (``520`` usage replies span lines)::

    200 result=1 (value)          GET VARIABLE, set
    200 result=0 endpos=3404      STREAM FILE
    200 result= (timeout)         GET DATA with no input
    510 Invalid or unknown command
    511 Command Not Permitted on a dead channel or intercept routine
    520-Invalid command syntax.  Proper usage follows:
    ...
    520 End of proper usage.

After the caller hangs up, Asterisk pushes a bare ``HANGUP`` line, which shows
up before the next reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

MAX_ENV_LINES = 200
MAX_LINE_BYTES = 8192
HANGUP_LINE = "HANGUP"

_RESULT = re.compile(r"^result=(?P<result>\S*)(?:\s+\((?P<data>.*?)\))?(?P<rest>(?:\s+\S+=\S*)*)\s*$")


class AgiError(Exception):
    """Base of FastAGI errors."""


class AgiProtocolError(AgiError):
    """The peer sent something that is not AGI."""


class AgiHangup(AgiError):
    """The channel hung up; the request ends cleanly."""


class AgiCommandError(AgiError):
    """A 5xx reply: unknown command, dead channel, bad usage."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"AGI {code}: {message}")
        self.code, self.message = code, message


@dataclass(frozen=True)
class AgiResult:
    code: int
    result: str
    data: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def value(self) -> int:
        """``result`` as an integer (``-1`` when not numeric, e.g. ``result=``)."""
        try:
            return int(self.result)
        except ValueError:
            return -1


def parse_env_line(line: str) -> tuple[str, str]:
    """``agi_channel: SIP/x`` -> ``("agi_channel", "SIP/x")``."""
    key, sep, value = line.partition(":")
    key = key.strip()
    if not sep or not key.startswith("agi_") or not key.replace("_", "").isalnum():
        raise AgiProtocolError(f"not an agi_* environment line: {line[:80]!r}")
    return key, value.strip()


def parse_script(env: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The script name and its query parameters.

    ``agi_network_script: echo?x=1&room=101`` -> ``("echo", {"x": "1", "room": "101"})``.
    """
    raw = env.get("agi_network_script")
    if raw is None:  # older Asterisk: only the full agi_request URL
        url = urlsplit(env.get("agi_request", ""))
        raw = f"{url.path}?{url.query}"
    path, _, query = raw.partition("?")
    params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    return path.strip("/"), params


def parse_args(env: dict[str, str]) -> list[str]:
    """Dialplan arguments ``agi_arg_1..N`` in order."""
    args: list[str] = []
    while f"agi_arg_{len(args) + 1}" in env:
        args.append(env[f"agi_arg_{len(args) + 1}"])
    return args


def parse_result_line(line: str) -> AgiResult:
    """Parse a ``200`` reply; raise ``AgiCommandError`` for 5xx.

    >>> parse_result_line("200 result=1 (value)")
    AgiResult(code=200, result='1', data='value', extra={})
    >>> parse_result_line("200 result=0 endpos=3404").extra
    {'endpos': '3404'}
    """
    line = line.rstrip("\r\n")
    code_text, _, rest = line.partition(" ")
    if len(code_text) != 3 or not code_text.isdigit():
        raise AgiProtocolError(f"not an AGI reply: {line[:80]!r}")
    code = int(code_text)
    if code != 200:
        raise AgiCommandError(code, rest.strip())
    m = _RESULT.match(rest.strip())
    if m is None:
        raise AgiProtocolError(f"AGI 200 reply without result=: {line[:80]!r}")
    extra = dict(pair.split("=", 1) for pair in m.group("rest").split())
    return AgiResult(code, m.group("result"), m.group("data"), extra)


def quote_arg(value: str) -> str:
    """Quote one command argument; line breaks would inject commands."""
    if "\n" in value or "\r" in value:
        raise ValueError("AGI argument contains a line break")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
