"""Whether the directory answers and equals the store: per PBX, the entries
wanted and held, and what a resync would change. For 'directory status'
and 'doctor'."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from kalliope_tel.checks import Check
from kalliope_tel.db.engine import transaction
from kalliope_tel.directory import ldap_tree
from kalliope_tel.directory.entries import directory_of
from kalliope_tel.directory.feature import rooms_lender
from kalliope_tel.directory.link import Link, phones_dn
from kalliope_tel.directory.slapd import DirectoryError
from kalliope_tel.directory.sync import target_of
from kalliope_tel.tenancy.models import Pbx

if TYPE_CHECKING:
    from kalliope_tel.container import Container


def status(container: Container) -> dict[str, Any]:
    target = target_of(container)
    if target is None:
        return {"url": "", "reachable": False, "error": "not set up: 'kalliope-tel directory up'", "pbxs": []}
    link = Link(target)
    try:
        link.connect()
    except DirectoryError as exc:
        return {"url": target.url, "reachable": False, "error": str(exc), "pbxs": []}
    rows = []
    try:
        with transaction(container.sessions, read_only=True) as session:
            rooms = rooms_lender(container)
            for pbx in session.scalars(select(Pbx).order_by(Pbx.slug)):
                wanted = ldap_tree.published(directory_of(session, pbx, rooms))
                try:
                    held = link.held(pbx.slug)
                except DirectoryError:
                    held = {}  # no subtree yet
                drift = ldap_tree.plan(held, wanted).counts()
                bind = phones_dn(target.base_dn, pbx.slug)
                rows.append({"pbx": pbx.slug, "wanted": len(wanted), "held": len(held), "drift": drift,
                             "in_step": not any(drift.values()), "bind_dn": bind})  # fmt: skip
    finally:
        link.close()
    return {"url": target.url, "base_dn": target.base_dn, "reachable": True, "error": "", "pbxs": rows}


def doctor_check(container: Container) -> Check:
    try:
        found = status(container)
    except DirectoryError as exc:
        return Check("directory", False, str(exc))
    if not found["url"]:  # never set up: the phones simply have no directory (a choice, not a fault)
        return Check("directory", True, "not set up: phones have no directory ('kalliope-tel directory up' starts it)")
    if not found["reachable"]:
        return Check("directory", False, found["error"], "start it: 'kalliope-tel directory up' (or set directory_url)")
    behind = [row["pbx"] for row in found["pbxs"] if not row["in_step"]]
    if behind:
        return Check("directory", False, f"{found['url']}: not in step for {', '.join(behind)}",
                     "is serve running? 'kalliope-tel directory resync' repairs it now")  # fmt: skip
    total = sum(row["held"] for row in found["pbxs"])
    return Check("directory", True, f"{found['url']}: {total} entries in step with the store")
