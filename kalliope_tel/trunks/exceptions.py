"""Errors of carriers, trunks and numbers: what the administrator reads."""

from kalliope_tel.errors import KalliopeError


class TrunkError(KalliopeError):
    pass


class NotFound(TrunkError):
    pass


class InvalidValue(TrunkError):
    pass


class InUse(TrunkError):
    """Refused while other rows need it (a trunk with numbers, a carrier with trunks)."""
