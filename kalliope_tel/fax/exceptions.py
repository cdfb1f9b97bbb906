"""Fax service errors: each message is what the user or admin should read."""

from kalliope_tel.errors import KalliopeError


class FaxError(KalliopeError):
    pass


class NotFound(FaxError):
    pass


class InvalidValue(FaxError):
    pass


class NotAllowed(FaxError):
    """The acting user may not do this (no permission on the instance)."""


class Refused(FaxError):
    """The fax cannot be sent as asked (instance disabled, number forbidden...)."""


class InUse(FaxError):
    """Still used (an instance with faxes in the register): disable it instead."""
