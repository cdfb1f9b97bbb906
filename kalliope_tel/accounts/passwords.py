"""Passwords: argon2id hashes, checked outside any transaction.

About 0.1 s of CPU a check on these machines (RFC 9106's second
recommended set: 64 MiB, 3 passes); callers hash between transactions so a
login flood does not hold SQLite's write lock.
"""

from __future__ import annotations

import contextlib

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from kalliope_tel.errors import KalliopeError

MIN_PASSWORD = 10
MAX_PASSWORD = 256


def _hasher() -> PasswordHasher:
    return PasswordHasher()


def new_hash(password: str, error: type[KalliopeError]) -> str:
    """The hash of an acceptable password (``error`` says why not)."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise error("user.password_length", low=MIN_PASSWORD, high=MAX_PASSWORD)
    if password.strip() != password:
        raise error("user.password_spaces")
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> tuple[bool, str | None]:
    """Whether ``password`` matches ``password_hash``, and a fresh hash when
    the stored one is outdated; touches no row."""
    if not password_hash or len(password) > MAX_PASSWORD:
        return False, None
    hasher = _hasher()
    try:
        hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False, None
    return True, hasher.hash(password) if hasher.check_needs_rehash(password_hash) else None


def dummy_password_check(password: str) -> None:
    """As long as a real check: a login for an unknown address takes the same time."""
    with contextlib.suppress(VerificationError, InvalidHashError):
        _hasher().verify(_DUMMY_HASH, password[:MAX_PASSWORD])


_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$ApioAtXDFKIu9XCBYDwu4w$gtKTxxhNZ2p5srRf681t71BZl5JWpMsm1umgGETYVH4"
