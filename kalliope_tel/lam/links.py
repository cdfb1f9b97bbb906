"""Meeting links: a new videoconference instance per meeting, and moderator
tokens in the form Jitsi's token authentication expects.

Instance ids are 42 letters and digits from ``secrets`` (about 250 bits).
A moderator's link carries a JWT (HS256, the shared app secret) whose claims
are Jitsi's: ``iss`` the app id, ``aud`` "jitsi", ``sub`` the Jitsi domain,
``room`` the instance id, ``context.user`` with ``moderator: true``, and
``nbf``/``exp`` bounded by the meeting (with the configured margin), so a
token is good for that room in that window only. Stock Jitsi makes every
token holder a moderator (jicofo#576): guests therefore get no token at
all, and the moderator claim is what a patched or configured Prosody checks.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import jwt

from kalliope_tel.lam.exceptions import InvalidToken

ALPHABET = string.ascii_letters + string.digits
INSTANCE_LENGTH = 42
AUDIENCE = "jitsi"


def new_instance_id() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(INSTANCE_LENGTH))


def new_pin(digits: int = 8) -> str:
    # Never starting with 0: some phones' and carriers' DTMF paths drop it.
    return str(secrets.choice(range(1, 10))) + "".join(str(secrets.randbelow(10)) for _ in range(digits - 1))


@dataclass(frozen=True)
class JitsiSite:
    base_url: str  # https://meet.example.com
    app_id: str
    secret: str
    margin: timedelta

    @property
    def domain(self) -> str:
        return self.base_url.split("://", 1)[-1].split("/", 1)[0]


def moderator_token(
    site: JitsiSite, instance_id: str, starts_at: datetime, ends_at: datetime, *, name: str, email: str
) -> str:
    claims: dict[str, Any] = {
        "iss": site.app_id,
        "aud": AUDIENCE,
        "sub": site.domain,
        "room": instance_id,
        "nbf": int((starts_at - site.margin).timestamp()),
        "exp": int((ends_at + site.margin).timestamp()),
        "context": {"user": {"name": name, "email": email, "moderator": True}},
    }
    return jwt.encode(claims, site.secret, algorithm="HS256")


def verify(site: JitsiSite, token: str, instance_id: str, *, at: datetime | None = None) -> dict[str, Any]:
    """The token's claims if it is ours (signature, issuer, audience), for
    this room, and valid now (or at ``at``); else ``InvalidToken`` saying why."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            site.secret,
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=site.app_id,
            options={"require": ["exp", "nbf", "room", "iss", "aud"], "verify_exp": False, "verify_nbf": False},
        )
    except jwt.InvalidTokenError as exc:
        raise InvalidToken(f"not a valid meeting token: {exc}") from None
    when = (at or datetime.now(UTC)).timestamp()
    if when < claims["nbf"]:
        raise InvalidToken("the token is not valid yet (the meeting has not started)")
    if when >= claims["exp"]:
        raise InvalidToken("the token has expired (the meeting is over)")
    if claims["room"] != instance_id:
        raise InvalidToken("the token is for another meeting room")
    return claims


def meeting_link(site: JitsiSite, instance_id: str, token: str | None = None) -> str:
    link = f"{site.base_url.rstrip('/')}/{instance_id}"
    return f"{link}?jwt={quote(token)}" if token else link
