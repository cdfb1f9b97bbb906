class TenancyError(Exception):
    """Base of tenancy errors."""


class PbxNotFound(TenancyError):
    def __init__(self, slug: str) -> None:
        super().__init__(f"no PBX named {slug!r}")
        self.slug = slug
