"""Hotel errors: each message is what the receptionist or admin should read.

A room is an extension with hotel data, so the refusals of values, of
missing rows and of rows in use are the extensions' own (one class each,
whichever of the two refuses).
"""

from kalliope_tel.errors import KalliopeError
from kalliope_tel.extensions.exceptions import InUse as InUse
from kalliope_tel.extensions.exceptions import InvalidValue as InvalidValue
from kalliope_tel.extensions.exceptions import NotFound as NotFound


class HotelError(KalliopeError):
    pass


class RoomOccupied(HotelError):
    pass


class RoomFree(HotelError):
    pass


class ImportRejected(HotelError):
    """An import file with bad rows: nothing was imported."""

    def __init__(self, errors: list[tuple[int, str]]) -> None:
        self.errors = errors
        listed = "; ".join(f"line {line}: {reason}" for line, reason in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(f"{len(errors)} bad row(s), nothing imported: {listed}{more}")
