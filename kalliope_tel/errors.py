"""The root of kalliope-tel's own errors: the CLI prints them as one line,
the web in the reader's language.

Raised with a catalogue code and its parameters
(``RoomOccupied("hotel.room_occupied", room="101")``), an error carries both,
and ``str()`` is the English text. Raised with a plain sentence (older code,
messages only operators read), it is that sentence in every language.
"""

from __future__ import annotations

import re
from typing import Any

from kalliope_tel import catalogue

_CODE = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+")


class KalliopeError(Exception):
    """An error whose message is meant for the operator or the user as it is."""

    code: str = ""
    params: dict[str, Any]

    def __init__(self, message: str = "", /, **params: Any) -> None:
        self.params = params
        if _CODE.fullmatch(message) and catalogue.has(message):
            self.code = message
            message = catalogue.render(catalogue.DEFAULT, message, params)
        super().__init__(message)

    def phrase(self) -> catalogue.Phrase | str:
        """This error as a parameter of another (rendered in the same language)."""
        return catalogue.Phrase(self.code, self.params) if self.code else str(self)

    def text(self, lang: str) -> str:
        """The message in ``lang``: from the catalogue when raised with a code."""
        if self.code:
            return catalogue.render(lang, self.code, self.params)
        return str(self)
