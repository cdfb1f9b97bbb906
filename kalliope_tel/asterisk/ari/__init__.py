"""A thin, supervised ARI client on aiohttp (REST) and websockets (events)."""

from kalliope_tel.asterisk.ari.client import AriClient
from kalliope_tel.asterisk.ari.errors import AriError, AriGone, AriHttpError, AriUnavailable

__all__ = ["AriClient", "AriError", "AriGone", "AriHttpError", "AriUnavailable"]
