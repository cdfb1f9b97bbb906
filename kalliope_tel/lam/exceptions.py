from kalliope_tel.errors import KalliopeError


class LamError(KalliopeError):
    pass


class NotFound(LamError):
    pass


class InvalidValue(LamError):
    pass


class NotAllowed(LamError):
    pass


class Overlap(LamError):
    """The room's calendar already has a meeting then."""


class InvalidToken(LamError):
    pass
