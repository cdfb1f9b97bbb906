"""A PBX's numbers (Numerazioni): a single number, or a block of 10, 100
or 1,000 whose last 1, 2 or 3 digits name the extension that rings.

No two numbers of the installation overlap: a block covers every number of
its length that starts with its prefix, so a block and a number (or two
blocks) collide when they have the same length and one's prefix starts the
other's. ``Blocks`` answers that from the prefixes alone, for one creation
and for a whole import. A deleted number is gone from the table at once,
so it can be created again immediately (no soft delete: omnia-notes 3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kalliope_tel.oplog.services import Actor, record
from kalliope_tel.tenancy.companies import is_serving, serving_pbx_ids
from kalliope_tel.tenancy.models import Company, Pbx
from kalliope_tel.trunks.exceptions import InvalidValue, NotFound
from kalliope_tel.trunks.models import PhoneNumber, SipTrunk, trunks_serving

_NUMBER = re.compile(r"[0-9]{4,16}")
KINDS = {0: "single", 1: "block_10", 2: "block_100", 3: "block_1000"}
SORTS = ("number", "type", "carrier", "status")


def block_label(number: str, digits: int) -> str:
    """How the list shows a number: 0612345678, or a block as 06123456XX."""
    return number[: len(number) - digits] + "X" * digits


@dataclass
class Blocks:
    """Prefixes of numbers and blocks, to find a collision without a query
    per row. Keys carry the numbers' length: numbers of different lengths
    never collide."""

    prefixes: dict[tuple[int, str], str] = field(default_factory=dict)  # (length, a block's prefix) -> its number
    # (length, every start of a prefix down to 3 digits shorter than the number) -> number
    starts: dict[tuple[int, str], str] = field(default_factory=dict)

    def add(self, number: str, digits: int) -> None:
        size, prefix = len(number), number[: len(number) - digits]
        self.prefixes[size, prefix] = number
        for cut in range(max(size - 3, 1), len(prefix) + 1):
            self.starts.setdefault((size, prefix[:cut]), number)

    def collision(self, number: str, digits: int) -> str | None:
        """The existing number this one would overlap, or None."""
        size, prefix = len(number), number[: len(number) - digits]
        if (size, prefix) in self.starts:  # an existing block starts with this prefix (or is it)
            return self.starts[size, prefix]
        for cut in range(max(size - 3, 1), len(prefix)):
            if (size, prefix[:cut]) in self.prefixes:  # an existing, larger block covers this one
                return self.prefixes[size, prefix[:cut]]
        return None


def serialise(session: Session) -> None:
    """Number creations take turns (PostgreSQL: a row lock held to the
    commit): the overlap check reads, then inserts, and two overlapping
    blocks written at once by two nodes would both pass it. The lock is on
    the installation's first partner, a row every installation has; SQLite
    serialises its writers itself."""
    first = select(Company.id).where(Company.parent_id.is_(None)).order_by(Company.id).limit(1)
    session.execute(first.with_for_update())


def blocks_of_length(session: Session, length: int) -> Blocks:
    blocks = Blocks()
    query = select(PhoneNumber.number, PhoneNumber.digits).where(func.length(PhoneNumber.number) == length)
    for number, digits in session.execute(query):
        blocks.add(number, digits)
    return blocks


def check_number(number: Any, digits: Any) -> tuple[str, int]:
    if not isinstance(number, str) or _NUMBER.fullmatch(number.strip()) is None:
        raise InvalidValue("numbers.number_form", number=str(number)[:40], setting="number")
    if digits not in KINDS:
        raise InvalidValue("numbers.type_form", value=str(digits)[:10], setting="type")
    number = number.strip()
    if len(number) - digits < 3:
        raise InvalidValue("numbers.too_short", number=number, setting="number")
    return number, int(digits)


def trunk_for(session: Session, pbx: Pbx, trunk_id: int) -> SipTrunk:
    """A trunk that serves the PBX (its company's, or its partner's)."""
    trunk = next((t for t in trunks_serving(session, pbx) if t.id == trunk_id), None)
    if trunk is None:
        raise NotFound("trunks.no_trunk", trunk=trunk_id)
    return trunk


def number_fields(session: Session, entry: PhoneNumber, serving: set[int] | None = None) -> dict[str, Any]:
    active = entry.pbx_id in serving if serving is not None else is_serving(session, entry.pbx_id)
    return {
        "number": entry.number,
        "block": block_label(entry.number, entry.digits),
        "type": entry.digits,
        "trunk": entry.trunk.description,
        "trunk_id": entry.trunk_id,
        "carrier": entry.trunk.carrier.name,
        "status": "active" if active else "suspended",
    }


def create_number(
    session: Session,
    actor: Actor | None,
    company: Company,
    pbx: Pbx,
    number: Any,
    digits: Any,
    trunk_id: int,
) -> PhoneNumber:
    """``actor`` None: part of a larger change that logs itself."""
    number, digits = check_number(number, digits)
    trunk = trunk_for(session, pbx, trunk_id)
    serialise(session)
    collision = blocks_of_length(session, len(number)).collision(number, digits)
    if collision is not None:
        raise InvalidValue("numbers.overlap", number=block_label(number, digits), other=collision, setting="number")
    entry = PhoneNumber(pbx_id=pbx.id, trunk_id=trunk.id, number=number, digits=digits)
    entry.trunk = trunk
    session.add(entry)
    session.flush()
    if actor is not None:
        record(session, actor, "log.number_created", "number", entry.number, company_id=company.id,
               after={"pbx": pbx.slug, **number_fields(session, entry)})  # fmt: skip
    return entry


def numbers_of(session: Session, pbx: Pbx) -> list[PhoneNumber]:
    return list(session.scalars(select(PhoneNumber).where(PhoneNumber.pbx_id == pbx.id).order_by(PhoneNumber.number)))


def number_of(session: Session, pbx: Pbx, number: str) -> PhoneNumber:
    found = session.scalars(
        select(PhoneNumber).where(PhoneNumber.pbx_id == pbx.id, PhoneNumber.number == number)
    ).first()
    if found is None:
        raise NotFound("numbers.not_found", number=number)
    return found


def delete_number(session: Session, actor: Actor, company: Company, pbx: Pbx, number: str) -> None:
    entry = number_of(session, pbx, number)
    before = {"pbx": pbx.slug, **number_fields(session, entry)}
    session.delete(entry)
    session.flush()
    record(session, actor, "log.number_deleted", "number", number, company_id=company.id, before=before)


def list_numbers(
    session: Session, pbx: Pbx, text: str = "", status: str = "", sort: str = "number", descending: bool = False
) -> list[dict[str, Any]]:
    """The list: search (number, carrier, trunk), filter by status, sort by a column."""
    if sort not in SORTS:
        raise InvalidValue("numbers.sort", known=", ".join(SORTS))
    serving = set(session.scalars(serving_pbx_ids()))
    rows = [number_fields(session, n, serving) for n in numbers_of(session, pbx)]
    needle = text.strip().lower()
    rows = [
        r
        for r in rows
        if (not status or r["status"] == status)
        and (not needle or any(needle in str(r[k]).lower() for k in ("block", "carrier", "trunk")))
    ]
    key = "number" if sort == "number" else sort
    return sorted(rows, key=lambda r: (r[key], r["number"]), reverse=descending)


def numbers_count(session: Session, pbx: Pbx) -> int:
    return int(session.scalar(select(func.count()).where(PhoneNumber.pbx_id == pbx.id)) or 0)
