"""The directory's LDAP side, through python-ldap (blocking: serve runs it
in a thread). Connect as the administrator, make sure a PBX's subtree and
its phones' account exist, read what the subtree holds, and carry out a
``ldap_tree.Plan``. Every DN part is escaped here."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import ldap
from ldap.dn import escape_dn_chars

from kalliope_tel.directory.ldap_tree import OBJECT_CLASSES, OWNED, PHONES, Plan
from kalliope_tel.directory.slapd import DirectoryError, ssha

TIMEOUT = 5.0


@dataclass(frozen=True)
class Target:
    """Where the directory is and how kalliope-tel writes to it."""

    url: str
    base_dn: str
    admin_dn: str
    admin_password: str
    phones_secret: str


def pbx_dn(base: str, slug: str) -> str:
    return f"ou={escape_dn_chars(slug)},{base}"


def phones_dn(base: str, slug: str) -> str:
    return f"cn={PHONES},{pbx_dn(base, slug)}"


def entry_dn(base: str, slug: str, number: str) -> str:
    return f"uid={escape_dn_chars(number)},{pbx_dn(base, slug)}"


class Link:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.conn: Any = None

    def connect(self) -> None:
        try:
            conn = ldap.initialize(self.target.url)
            conn.set_option(ldap.OPT_NETWORK_TIMEOUT, TIMEOUT)
            conn.set_option(ldap.OPT_TIMEOUT, TIMEOUT)
            conn.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
            conn.simple_bind_s(self.target.admin_dn, self.target.admin_password)
        except ldap.LDAPError as exc:
            raise DirectoryError(f"directory {self.target.url}: {_reason(exc)}") from None
        self.conn = conn

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(ldap.LDAPError):  # closing anyway
                self.conn.unbind_s()
            self.conn = None

    def ensure_base(self) -> None:
        base = self.target.base_dn
        first = base.split(",")[0].split("=", 1)[1]
        self._add_if_missing(base, {"objectClass": [b"top", b"dcObject", b"organization"],
                                    "dc": [first.encode()], "o": [b"kalliope-tel"]})  # fmt: skip

    def ensure_pbx(self, slug: str, phones_password: str) -> None:
        base = self.target.base_dn
        self._add_if_missing(pbx_dn(base, slug), {"objectClass": [b"top", b"organizationalUnit"],
                                                   "ou": [slug.encode()]})  # fmt: skip
        dn = phones_dn(base, slug)
        secret = [ssha(phones_password).encode()]
        if not self._add_if_missing(dn, {"objectClass": [b"top", b"organizationalRole", b"simpleSecurityObject"],
                                         "cn": [PHONES.encode()], "userPassword": secret}):  # fmt: skip
            self._call(self.conn.modify_s, dn, [(ldap.MOD_REPLACE, "userPassword", secret)])

    def remove_pbx(self, slug: str) -> int:
        """The PBX's subtree (a PBX deleted): how many entries went."""
        dn = pbx_dn(self.target.base_dn, slug)
        try:
            found = self.conn.search_s(dn, ldap.SCOPE_SUBTREE, "(objectClass=*)", ["1.1"])
        except ldap.NO_SUCH_OBJECT:
            return 0
        except ldap.LDAPError as exc:
            raise DirectoryError(_reason(exc)) from None
        for child, _ in sorted(found, key=lambda item: -len(item[0])):  # leaves first
            self._call(self.conn.delete_s, child)
        return len(found)

    def pbx_slugs(self) -> list[str]:
        found = self._call(self.conn.search_s, self.target.base_dn, ldap.SCOPE_ONELEVEL,
                           "(objectClass=organizationalUnit)", ["ou"])  # fmt: skip
        return sorted(attrs["ou"][0].decode() for _, attrs in found if attrs.get("ou"))

    def held(self, slug: str) -> dict[str, dict[str, list[bytes]]]:
        """uid -> owned attributes of the PBX's published entries."""
        found = self._call(self.conn.search_s, pbx_dn(self.target.base_dn, slug), ldap.SCOPE_ONELEVEL,
                           "(objectClass=inetOrgPerson)", ["uid", *OWNED])  # fmt: skip
        out = {}
        for _dn, attrs in found:
            uid = attrs.get("uid", [b""])[0].decode()
            out[uid] = {k: v for k, v in attrs.items() if k in OWNED}
        return out

    def apply(self, slug: str, plan: Plan) -> None:
        """Carry out the plan. Another node may have done part of it since
        it was read: an entry already there is changed instead, one already
        gone is left gone."""
        base = self.target.base_dn
        for uid, attrs in plan.add.items():
            record = [("objectClass", OBJECT_CLASSES), ("uid", [uid.encode()]), *attrs.items()]
            try:
                self.conn.add_s(entry_dn(base, slug, uid), record)
            except ldap.ALREADY_EXISTS:
                plan.modify[uid] = attrs
            except ldap.LDAPError as exc:
                raise DirectoryError(_reason(exc)) from None
        for uid, attrs in plan.modify.items():
            changes = [(ldap.MOD_REPLACE, key, attrs.get(key)) for key in OWNED]
            self._call(self.conn.modify_s, entry_dn(base, slug, uid), changes)
        for uid in plan.delete:
            with contextlib.suppress(ldap.NO_SUCH_OBJECT):
                self._call_raw(self.conn.delete_s, entry_dn(base, slug, uid))

    def _add_if_missing(self, dn: str, attrs: dict[str, list[bytes]]) -> bool:
        try:
            self.conn.add_s(dn, list(attrs.items()))
        except ldap.ALREADY_EXISTS:
            return False
        except ldap.LDAPError as exc:
            raise DirectoryError(f"{dn}: {_reason(exc)}") from None
        return True

    def _call_raw(self, method: Any, *args: Any) -> Any:
        """As ``_call``, but NO_SUCH_OBJECT is left to the caller."""
        try:
            return method(*args)
        except ldap.NO_SUCH_OBJECT:
            raise
        except ldap.LDAPError as exc:
            raise DirectoryError(_reason(exc)) from None

    def _call(self, method: Any, *args: Any) -> Any:
        try:
            return method(*args)
        except ldap.LDAPError as exc:
            raise DirectoryError(_reason(exc)) from None


def _reason(exc: Exception) -> str:
    detail = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    return str(detail.get("desc") or exc) + (f" ({detail['info']})" if detail.get("info") else "")
