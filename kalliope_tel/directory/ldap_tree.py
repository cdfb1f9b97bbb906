"""The LDAP tree, sans-IO: names and attributes of what a PBX publishes,
and the operations that bring a subtree from what it holds to what it
should (``plan``). ``link`` carries them out.

    <base>                                       dcObject (the installation)
      ou=<slug>,<base>                           organizationalUnit, one per PBX
        cn=phones,ou=<slug>,<base>               the PBX's phones bind as it (read-only)
        uid=<number>,ou=<slug>,<base>            inetOrgPerson, one per published entry

slapd's access rules (``slapd.render_conf``) let ``cn=phones`` of a PBX
read its own subtree and nothing else. Values are UTF-8; DN parts are
escaped by python-ldap's ``escape_dn_chars`` in ``link``, never formatted
in raw.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kalliope_tel.directory.entries import Entry

PHONES = "phones"
OBJECT_CLASSES = [b"top", b"person", b"organizationalPerson", b"inetOrgPerson"]
# Attributes kalliope-tel owns on an entry: others (an operator's) are left alone.
OWNED = ("cn", "sn", "telephoneNumber", "mail", "departmentNumber", "o", "ou")


def attributes(entry: Entry) -> dict[str, list[bytes]]:
    values = {
        "cn": entry.name,
        "sn": entry.surname,
        "telephoneNumber": entry.number,
        "mail": entry.mail,
        "departmentNumber": entry.department,
        "o": entry.organization,
        "ou": entry.unit,
    }
    return {key: [value.encode()] for key, value in values.items() if value}


@dataclass
class Plan:
    """What to do to a PBX's subtree: uid -> attributes."""

    add: dict[str, dict[str, list[bytes]]] = field(default_factory=dict)
    modify: dict[str, dict[str, list[bytes]]] = field(default_factory=dict)  # the full owned set to hold
    delete: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.add or self.modify or self.delete)

    def counts(self) -> dict[str, int]:
        return {"added": len(self.add), "changed": len(self.modify), "removed": len(self.delete)}


def published(entries: list[Entry]) -> dict[str, dict[str, list[bytes]]]:
    return {e.number: attributes(e) for e in entries if e.ldap}


def plan(held: dict[str, dict[str, list[bytes]]], wanted: dict[str, dict[str, list[bytes]]]) -> Plan:
    """From ``held`` (uid -> owned attributes now in LDAP) to ``wanted``."""
    out = Plan()
    for uid, attrs in wanted.items():
        if uid not in held:
            out.add[uid] = attrs
        elif {k: sorted(v) for k, v in held[uid].items() if k in OWNED} != {k: sorted(v) for k, v in attrs.items()}:
            out.modify[uid] = attrs
    out.delete = sorted(uid for uid in held if uid not in wanted)
    return out
