"""Hotel errors: each message is what the receptionist or admin should read."""

from kalliope_tel.errors import KalliopeError


class HotelError(KalliopeError):
    pass


class NotFound(HotelError):
    pass


class RoomOccupied(HotelError):
    pass


class RoomFree(HotelError):
    pass


class InvalidValue(HotelError):
    pass


class InUse(HotelError):
    pass


class ImportRejected(HotelError):
    """An import file with bad rows: nothing was imported."""

    def __init__(self, errors: list[tuple[int, str]]) -> None:
        self.errors = errors
        listed = "; ".join(f"line {line}: {reason}" for line, reason in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(f"{len(errors)} bad row(s), nothing imported: {listed}{more}")
