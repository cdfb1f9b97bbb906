"""Asterisk's realtime questions about the extensions' PJSIP accounts,
answered from the store (``pjsip_accounts = "realtime"``).

Asterisk's sorcery looks endpoints, auths and AORs up through
``res_config_curl``: a POST to ``.../<family>/<single|multi|require>`` with
the criteria form-encoded (``id=acme-101``, ``id LIKE=%``,
``mailboxes !==``), and reads back ``key=value&...`` (one line per row for
``multi``). Nothing is written to a file and nothing is reloaded: a change
is live once Asterisk's memory cache of that object is expired
(``autoapply``). The objects are those ``asterisk render`` writes to files
(``dialplan.extensions.account_objects``), so both paths give Asterisk the
same options, through the same gate.

The answers are read-only: ``store``, ``update`` and ``destroy`` fail
(``-1``); contacts live in Asterisk's own astdb.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.asterisk.realtime_conf import FAMILIES
from kalliope_tel.dialplan.extensions import account_objects, active_accounts
from kalliope_tel.extensions.models import Extension, ExtensionStatus, SipAccount
from kalliope_tel.tenancy.companies import is_serving, serving_pbx_ids
from kalliope_tel.tenancy.models import Pbx

AUTH_SUFFIX = "-auth"
OPERATORS = ("!=", "<=", ">=", "=", "<", ">", "LIKE")
MAX_CRITERIA = 16

Row = dict[str, str]


class BadQuery(ValueError):
    """A question this answerer does not understand (answered empty, logged)."""


@dataclass(frozen=True)
class Criterion:
    field: str
    op: str
    value: str

    def matches(self, row: Row) -> bool:
        have = row.get(self.field, "")
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        if self.op == "LIKE":  # SQL's % and _, as fnmatch's * and ?
            pattern = self.value.replace("*", "[*]").replace("?", "[?]").replace("%", "*").replace("_", "?")
            return fnmatch.fnmatchcase(have, pattern)
        return {"<": have < self.value, ">": have > self.value, "<=": have <= self.value, ">=": have >= self.value}[
            self.op
        ]


def parse_criteria(body: str) -> list[Criterion]:
    """``id=x&id LIKE=%``: a field, an optional operator after a space, a value."""
    pairs = parse_qsl(body, keep_blank_values=True, max_num_fields=MAX_CRITERIA)
    out = []
    for key, value in pairs:
        field, _, op = key.strip().partition(" ")
        op = op.strip().upper() or "="
        if op not in OPERATORS or not field.replace("_", "").isalnum():
            raise BadQuery(f"criterion {key!r}")
        out.append(Criterion(field, op, value))
    return out


def _as_row(section: str, options: list[tuple[str, str]]) -> Row:
    return {"id": section, **dict(options)}


def _rows_of(pbx: Pbx, ext: Extension, acc: SipAccount, kind: str) -> list[Row]:
    return [_as_row(section, options) for section, k, options in account_objects(pbx, ext, acc) if k == kind]


def _account(session: Session, login: str) -> tuple[Pbx, Extension, SipAccount] | None:
    """The active account registering as ``login`` in a serving PBX: a
    ``<slug>-`` prefix names a PBX; without one it is the default PBX's.
    Two indexed lookups (the PBX by slug, the account by PBX and name): this
    runs for every hint of a cold dialplan reload."""
    slug, dash, rest = login.partition("-")
    candidates = [(slug, rest)] if dash else []
    candidates.append(("", login))
    for pbx_slug, username in candidates:
        pbx = session.scalar(select(Pbx).where(Pbx.slug == pbx_slug if pbx_slug else Pbx.is_default))
        if pbx is None:
            continue
        acc = session.scalar(select(SipAccount).where(SipAccount.pbx_id == pbx.id, SipAccount.username == username))
        if acc is None or acc.extension is None:
            continue
        if acc.extension.status is ExtensionStatus.SUSPENDED or not is_serving(session, pbx.id):
            return None
        return pbx, acc.extension, acc
    return None


def _by_id(session: Session, kind: str, object_id: str) -> list[Row]:
    login = object_id
    if kind == "auth":
        if not object_id.endswith(AUTH_SUFFIX):
            return []
        login = object_id[: -len(AUTH_SUFFIX)]
    found = _account(session, login)
    if found is None:
        return []
    return [row for row in _rows_of(*found, kind) if row["id"] == object_id]


def _every(session: Session, kind: str) -> list[Row]:
    pbxs = session.scalars(select(Pbx).where(Pbx.id.in_(serving_pbx_ids())).order_by(Pbx.slug))
    return [row for pbx in pbxs for ext, acc in active_accounts(session, pbx) for row in _rows_of(pbx, ext, acc, kind)]


def rows(session: Session, family: str, criteria: list[Criterion]) -> list[Row]:
    kind = FAMILIES.get(family)
    if kind is None:
        raise BadQuery(f"family {family!r}")
    by_id = next((c.value for c in criteria if c.field == "id" and c.op == "="), None)
    found = _by_id(session, kind, by_id) if by_id is not None else _every(session, kind)
    return [row for row in found if all(c.matches(row) for c in criteria)]


def encode(row: Row) -> str:
    # Asterisk decodes %XX only (not '+'), so every byte but the unreserved is escaped.
    return "&".join(f"{quote(key, safe='')}={quote(value, safe='')}" for key, value in row.items())


def answer(session: Session, family: str, operation: str, body: str) -> str:
    """The text Asterisk reads back for one realtime request."""
    if operation == "require":  # the columns Asterisk needs: every object has them
        return "0"
    if operation in ("store", "update", "destroy"):
        return "-1"  # read-only: Asterisk keeps its contacts in astdb
    if operation not in ("single", "multi"):
        raise BadQuery(f"operation {operation!r}")
    found = rows(session, family, parse_criteria(body))
    if operation == "single":
        return encode(found[0]) if found else ""
    return "\n".join(encode(row) for row in found)
