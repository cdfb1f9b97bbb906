"""ARI errors. A 404 is its own type: the channel or bridge is gone, which call
flows treat as a normal outcome (the guest hung up), not as a fault."""

from __future__ import annotations


class AriError(Exception):
    """Base of every ARI error."""


class AriUnavailable(AriError):
    """Asterisk cannot be reached (refused, timed out, restarting)."""


class AriHttpError(AriError):
    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(f"ARI {method} {path}: {status} {message}")
        self.method, self.path, self.status, self.message = method, path, status, message


class AriGone(AriHttpError):
    """404: the resource (channel, bridge, playback) no longer exists."""


class AriAuthError(AriHttpError):
    """401: the ARI username or password is wrong."""


class AriProtocolError(AriError):
    """Asterisk sent something that is not a valid ARI message."""
