"""Tenancy errors: each message is what the administrator should read."""

from kalliope_tel.errors import KalliopeError


class TenancyError(KalliopeError):
    """Base of tenancy errors."""


class PbxNotFound(TenancyError):
    def __init__(self, slug: str) -> None:
        super().__init__(f"no PBX named {slug!r}")
        self.slug = slug


class InvalidPbx(TenancyError):
    """A PBX or Asterisk server value that cannot be accepted."""


class AsteriskServerNotFound(TenancyError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no Asterisk server named {name!r} ('kalliope-tel pbx servers' lists them)")
        self.name = name


class InvalidCompany(TenancyError):
    """Company data that cannot be accepted (with the field it concerns)."""


class CompanyNotFound(TenancyError):
    pass
