"""An asyncio FastAGI server (see dependencies.md for why not panoramisk)."""

from kalliope_tel.asterisk.agi.protocol import AgiCommandError, AgiError, AgiHangup, AgiResult
from kalliope_tel.asterisk.agi.server import AgiRequest, AgiRouter, AgiServer

__all__ = [
    "AgiCommandError",
    "AgiError",
    "AgiHangup",
    "AgiRequest",
    "AgiResult",
    "AgiRouter",
    "AgiServer",
]
