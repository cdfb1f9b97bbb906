"""Built-in archive encryption: AES-256-GCM (authenticated) with the key of
the ``fax_archive_key`` setting.

File layout: ``KTFAX1`` (magic, also the associated data), a 12-byte random
nonce, then the ciphertext with its 16-byte tag. A changed byte, a wrong key
or a truncated file is refused on decryption, never returned as garbage.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kalliope_tel.errors import KalliopeError

MAGIC = b"KTFAX1"
SUFFIX = ".ktenc"


class CryptoError(KalliopeError):
    pass


def new_key() -> str:
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


def load_key(text: str) -> bytes:
    if not text:
        raise CryptoError("no archive key: set fax_archive_key (see 'kalliope-tel fax archive keygen')")
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CryptoError("fax_archive_key is not base64") from None
    if len(key) != 32:
        raise CryptoError(f"fax_archive_key must be 32 bytes (base64 of 32 random bytes), not {len(key)}")
    return key


def encrypt(key: bytes, data: bytes) -> bytes:
    nonce = os.urandom(12)
    return MAGIC + nonce + AESGCM(key).encrypt(nonce, data, MAGIC)


def decrypt(key: bytes, blob: bytes) -> bytes:
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 12 + 16:
        raise CryptoError("not a kalliope-tel encrypted archive file")
    nonce, body = blob[len(MAGIC) : len(MAGIC) + 12], blob[len(MAGIC) + 12 :]
    try:
        return AESGCM(key).decrypt(nonce, body, MAGIC)
    except InvalidTag:
        raise CryptoError("the file was changed, or the key is not the one it was written with") from None
