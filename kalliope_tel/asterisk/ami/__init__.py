"""A small asyncio AMI client (see dependencies.md for why not panoramisk)."""

from kalliope_tel.asterisk.ami.client import AmiClient
from kalliope_tel.asterisk.ami.protocol import AmiAuthError, AmiError, AmiMessage, AmiProtocolError

__all__ = ["AmiAuthError", "AmiClient", "AmiError", "AmiMessage", "AmiProtocolError"]
