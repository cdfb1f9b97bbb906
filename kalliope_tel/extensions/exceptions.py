"""Errors of extensions, SIP accounts and classes: what the administrator reads."""

from kalliope_tel.errors import KalliopeError


class ExtensionError(KalliopeError):
    pass


class NotFound(ExtensionError):
    pass


class InvalidValue(ExtensionError):
    pass


class InUse(ExtensionError):
    pass


class TooManyAttempts(ExtensionError):
    pass
