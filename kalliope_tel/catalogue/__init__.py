"""The one catalogue of everything a person reads: page labels, and the
refusals services raise (by code, with parameters), in Italian and English.

``en.json`` and ``it.json`` hold the texts; ``{name}`` placeholders take the
parameters. A test checks that both languages have the same codes, the same
placeholders in each, and that every code the sources raise is there.

Services raise ``KalliopeError("hotel.room_occupied", room="101")``; the CLI
and the logs read the English text (``str(exc)``), the web renders the code
in the language of the browser or of the user's choice.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

LANGUAGES = ("en", "it")
DEFAULT = "en"
_HERE = Path(__file__).parent


@cache
def messages(lang: str) -> dict[str, str]:
    """The catalogue of one language (``en`` when ``lang`` is not one of ours)."""
    chosen = lang if lang in LANGUAGES else DEFAULT
    data: dict[str, str] = json.loads((_HERE / f"{chosen}.json").read_text(encoding="utf-8"))
    return data


def has(code: str) -> bool:
    return code in messages(DEFAULT)


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


class Term(str):
    """A parameter that is itself a catalogue code (a state, a direction):
    rendered in the message's language, not as the code."""

    __slots__ = ()


@dataclass(frozen=True)
class Phrase:
    """A parameter that is a message of its own, with its parameters (a
    document's refusal inside "name: reason"): rendered in the same language."""

    code: str
    params: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return render(DEFAULT, self.code, self.params)


class _Missing(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"  # a parameter the caller did not give shows as itself, never a crash


def render(lang: str, code: str, params: dict[str, Any] | None = None) -> str:
    """The text of ``code`` in ``lang`` with ``params`` filled in; a code the
    catalogue does not have is shown as it is (the test makes that rare)."""
    template = messages(lang).get(code) or messages(DEFAULT).get(code) or code
    values = _Missing({k: _shown(lang, v) for k, v in (params or {}).items()})
    return template.format_map(values)


def _shown(lang: str, value: Any) -> Any:
    # Lists read as "a, b, c" in both languages; anything else as it formats.
    if isinstance(value, Phrase):
        return render(lang, value.code, value.params)
    if isinstance(value, Term):
        return messages(lang).get(value) or messages(DEFAULT).get(value) or str(value).rpartition(".")[2]
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(str(_shown(lang, v)) for v in value)
    return value
