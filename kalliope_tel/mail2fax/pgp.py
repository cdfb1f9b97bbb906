"""GnuPG for Mail2Fax (python-gnupg driving Debian's gpg): a box's keyring
holds its secret key (requests are encrypted to it) and, per request, the
sender user's public key (requests signed by it).

Each box gets its own GNUPGHOME (mode 0700) under the data directory,
rebuilt when the box's key changes; keys come from the database, so every
node can read every box. Key material never reaches argv or the logs.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import gnupg

from kalliope_tel.errors import KalliopeError

_LOCK = threading.Lock()


class PgpError(KalliopeError):
    pass


@dataclass(frozen=True)
class Verified:
    valid: bool
    fingerprint: str  # of the signing key ("" if none or unknown)
    signature_id: str = ""  # GnuPG's SIG_ID: the same for the same signature
    signed_at: float = 0.0  # the signature's creation time (epoch seconds)
    # SHA-256 of what was signed with it: the detached signature's bytes, or
    # the cleartext of a signed and encrypted message. GnuPG gives no SIG_ID
    # for EdDSA keys, and two requests signed in the same second by one key
    # differ only here.
    material: str = ""

    def digest(self) -> str:
        """What identifies this signature across copies of the message."""
        text = f"{self.fingerprint}|{self.signature_id}|{self.signed_at:.0f}|{self.material}"
        return hashlib.sha256(text.encode()).hexdigest()


def _gpg(home: Path) -> gnupg.GPG:
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    return gnupg.GPG(gnupghome=str(home), options=["--pinentry-mode", "loopback", "--batch", "--no-tty"])


def key_fingerprint(armored: str, *, secret: bool) -> str:
    """Check an armored key (one key; a secret key when ``secret``) in a
    scratch keyring and give its fingerprint."""
    with tempfile.TemporaryDirectory(prefix="kt-gpg-") as scratch:
        gpg = _gpg(Path(scratch) / "home")
        result = gpg.import_keys(armored)
        fingerprints = sorted(set(result.fingerprints))
        if not fingerprints:
            raise PgpError("pgp.no_key", field="key")
        if len(fingerprints) > 1:
            raise PgpError("pgp.many_keys", count=len(fingerprints), field="key")
        if secret and not gpg.list_keys(secret=True):
            raise PgpError("pgp.public_given", field="key")
        if secret and _has_passphrase(gpg, fingerprints[0]):
            raise PgpError("pgp.passphrase", field="key")
        _stop_agent(Path(scratch) / "home")
        return str(fingerprints[0])


def _has_passphrase(gpg: gnupg.GPG, fingerprint: str) -> bool:
    probe = gpg.sign("probe", keyid=fingerprint, detach=True)  # a protected key cannot sign without one
    return not bool(probe.data)


def _stop_agent(home: Path) -> None:
    import subprocess

    subprocess.run(
        ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True, check=False, timeout=10
    )


def _short_enough(root: Path) -> Path:
    """gpg-agent's socket lives in the GnuPG home unless /run/user/<uid>
    exists, and a Unix socket path is limited to 107 bytes: a deep data
    directory (measured: pytest's) leaves the agent unable to start and every
    secret-key operation failing with "no secret key". Such roots move to a
    short private folder of their own under the temporary directory."""
    if len(str(root)) + len("/box-0000-0123456789ABCDEF/S.gpg-agent.browser") < 100:
        return root
    import hashlib
    import os

    digest = hashlib.sha256(str(root).encode()).hexdigest()[:16]
    short = Path(tempfile.gettempdir()) / f"kt-gpg-{os.getuid()}" / digest
    short.mkdir(parents=True, exist_ok=True, mode=0o700)
    short.parent.chmod(0o700)
    (short / "root").write_text(str(root))  # whose keyrings these are
    return short


class BoxKeyring:
    """The keyring of one box under ``root`` (per box id and key fingerprint)."""

    def __init__(self, root: Path, box_id: int, secret_key: str, fingerprint: str) -> None:
        root = _short_enough(root)
        self.home = root / f"box-{box_id}-{fingerprint[-16:] or 'nokey'}"
        self.fingerprint = fingerprint
        with _LOCK:
            fresh = not (self.home / "ready").exists()
            if fresh:
                for old in root.glob(f"box-{box_id}-*"):
                    shutil.rmtree(old, ignore_errors=True)
            self.gpg = _gpg(self.home)
            if fresh and secret_key:
                result = self.gpg.import_keys(secret_key)
                if fingerprint not in result.fingerprints:
                    raise PgpError("the box's PGP key could not be imported")
                (self.home / "ready").write_text(fingerprint)
            elif fresh:
                (self.home / "ready").write_text("")

    def decrypt(self, data: bytes, what: str) -> tuple[bytes, Verified]:
        """The cleartext, and the signature found inside (signed and encrypted)."""
        if not self.fingerprint:
            raise PgpError(f"{what} is PGP-encrypted but the box has no PGP key")
        result = self.gpg.decrypt(data)  # unprotected keys only (checked when set): no passphrase
        if not result.ok:
            status = result.status or "not decryptable"
            raise PgpError(f"{what} cannot be decrypted with the box's key ({status})")
        clear = bytes(result.data)
        return clear, _verified(result, hashlib.sha256(clear).hexdigest())

    def trust_sender(self, public_key: str) -> None:
        """Import a sender's public key so a signature by it verifies."""
        if public_key:
            self.gpg.import_keys(public_key)

    def verify_detached(self, data: bytes, signature: bytes) -> Verified:
        with tempfile.NamedTemporaryFile(dir=self.home, suffix=".sig") as sig:
            sig.write(signature)
            sig.flush()
            result = self.gpg.verify_data(sig.name, data)
        return _verified(result, hashlib.sha256(signature).hexdigest())


def _verified(result: gnupg.Verify, material: str) -> Verified:
    # The primary key's fingerprint (what users store), not the signing subkey's.
    fingerprint = getattr(result, "pubkey_fingerprint", None) or result.fingerprint or ""
    stamp = getattr(result, "sig_timestamp", None) or getattr(result, "timestamp", None) or 0
    try:
        signed_at = float(stamp)
    except (TypeError, ValueError):
        signed_at = 0.0
    signature_id = str(getattr(result, "signature_id", "") or "")
    return Verified(bool(result.valid), str(fingerprint), signature_id, signed_at, material)
