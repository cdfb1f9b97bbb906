"""Service PINs: stored as salted PBKDF2 hashes, checked in constant time;
three tries a window (``kalliope_tel.attempts``), then a pause.

Not argon2 like passwords: a PIN of 4 to 8 digits falls to an offline
search whatever the hash costs, so what protects it is the limit on tries
(checked here, in the store, for every node); a cheap hash keeps a phone
service's answer quick and a 50,000-extension import fast. The hash only
keeps the PIN itself out of the store.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from kalliope_tel.extensions.exceptions import InvalidValue

ITERATIONS = 20_000
MAX_TRIES = 3
PAUSE = timedelta(minutes=5)
_FORM = re.compile(r"[0-9]{4,8}")


def check_form(pin: str) -> str:
    if not _FORM.fullmatch(pin):
        raise InvalidValue("extension.pin_form", setting="pin")
    return pin


def hash_pin(pin: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"


# Compared against when the extension has no PIN, so an unknown extension
# takes as long as a known one.
_DUMMY = hash_pin("00000000", b"kalliope-dummy..")


def pin_matches(stored: str, pin: str) -> bool:
    """Constant time in the PIN given (the hash is computed whatever it is)."""
    try:
        scheme, iterations, salt, digest = (stored or _DUMMY).split("$")
        if scheme != "pbkdf2_sha256":
            return False
        candidate = hashlib.pbkdf2_hmac("sha256", pin[:16].encode(), bytes.fromhex(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(candidate.hex(), digest) and bool(stored)


class Verdict:
    OK = "ok"
    WRONG = "wrong"
    PAUSED = "paused"  # too many tries: refused whatever the PIN until the pause ends
    NO_PIN = "no_pin"  # the extension has none (or there is no such extension)
