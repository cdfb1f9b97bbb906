"""Cost profiles and rules in the store, and their CSV form.

A profile prices the calls of one outgoing line (its ``line``, the trunk's
name as Asterisk's channel shows it), or of every line without a profile of
its own (``line`` ""). Every rule passes ``rating.make_rule`` and the whole
profile must compile (``rating.Tariff``) before anything is written, so a
duplicate or a second currency is refused with its reason and the profile
stays as it was.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.billing.models import CostProfile, CostRule
from kalliope_tel.billing.rating import Match, Rule, RuleConflict, Tariff, currency_code, format_amount, make_rule
from kalliope_tel.catalogue import Phrase
from kalliope_tel.errors import KalliopeError
from kalliope_tel.spreadsheets import csv_field, unquote
from kalliope_tel.tenancy.models import Pbx

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,79}$")
# A line is the trunk's endpoint name as in its channel (PJSIP/<line>-0000001f).
LINE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,79}$")
CSV_COLUMNS = [
    "match",
    "digits",
    "connection_fee",
    "per_minute",
    "first_increment",
    "next_increment",
    "minimum",
    "currency",
    "description",
]


class ProfileNotFound(KalliopeError):
    pass


class ProfileError(KalliopeError):
    pass


def _check_name(name: str) -> str:
    if not NAME.match(name):
        raise ProfileError("profile.name", name=repr(name), field="name")
    return name


def _check_line(line: str) -> str:
    if line and not LINE.match(line):
        raise ProfileError("profile.line", line=repr(line), field="line")
    return line


def list_profiles(session: Session, pbx: Pbx) -> list[CostProfile]:
    return list(session.scalars(select(CostProfile).where(CostProfile.pbx_id == pbx.id).order_by(CostProfile.line)))


def get_profile(session: Session, pbx: Pbx, name: str) -> CostProfile:
    found = session.scalar(select(CostProfile).where(CostProfile.pbx_id == pbx.id, CostProfile.name == name))
    if found is None:
        raise ProfileNotFound("profile.not_found", name=repr(name), pbx=pbx.slug)
    return found


def create_profile(
    session: Session, pbx: Pbx, name: str, *, line: str = "", currency: str = "EUR", description: str = ""
) -> CostProfile:
    _check_name(name)
    _check_line(line)
    currency_code(currency)
    for other in list_profiles(session, pbx):
        if other.name == name:
            raise ProfileError("profile.exists", name=repr(name), field="name")
        if other.line == line:
            if line:
                raise ProfileError("profile.line_taken", name=repr(other.name), line=repr(line), field="line")
            raise ProfileError("profile.default_taken", name=repr(other.name), field="line")
    profile = CostProfile(pbx_id=pbx.id, name=name, line=line, currency=currency, description=description[:200])
    session.add(profile)
    session.flush()
    return profile


def remove_profile(session: Session, pbx: Pbx, name: str) -> None:
    """Calls already priced keep their cost and the profile's name."""
    session.delete(get_profile(session, pbx, name))
    session.flush()


def rules_of(session: Session, profile: CostProfile) -> list[CostRule]:
    rows = session.scalars(select(CostRule).where(CostRule.profile_id == profile.id)).all()
    order = {Match.EXACT: 0, Match.PREFIX: 1, Match.OTHER: 2}
    return sorted(rows, key=lambda r: (order[r.match], r.digits))


def as_rule(row: CostRule, currency: str) -> Rule:
    return Rule(
        row.match,
        row.digits,
        row.connection_fee,
        row.per_minute,
        row.first_increment,
        row.next_increment,
        row.minimum,
        currency,
    )


def tariff(session: Session, profile: CostProfile) -> tuple[Tariff, dict[str, int]]:
    """The profile compiled, and its rules' ids by key (what priced a call)."""
    pairs = [(as_rule(row, profile.currency), row.id) for row in rules_of(session, profile)]
    return Tariff(rule for rule, _ in pairs), {rule.key: row_id for rule, row_id in pairs}


@dataclass(frozen=True)
class RuleInput:
    """A rule as an operator writes it (CLI options or a CSV row)."""

    match: str
    digits: str = ""
    connection_fee: str = "0"
    per_minute: str = "0"
    first_increment: int = 60
    next_increment: int = 60
    minimum: str = "0"
    currency: str = ""  # "" : the profile's
    description: str = ""

    def rule(self, profile: CostProfile) -> Rule:
        currency = self.currency or profile.currency
        if currency != profile.currency:
            raise RuleConflict("profile.currency", currency=currency, name=repr(profile.name), priced=profile.currency)
        return make_rule(
            self.match,
            self.digits,
            connection_fee=self.connection_fee,
            per_minute=self.per_minute,
            first_increment=self.first_increment,
            next_increment=self.next_increment,
            minimum=self.minimum,
            currency=currency,
        )


def _store(session: Session, pbx: Pbx, profile: CostProfile, rules: list[tuple[Rule, str]]) -> list[CostRule]:
    rows = [
        CostRule(
            pbx_id=pbx.id,
            profile_id=profile.id,
            match=rule.match,
            digits=rule.digits,
            connection_fee=rule.connection_fee,
            per_minute=rule.per_minute,
            first_increment=rule.first_increment,
            next_increment=rule.next_increment,
            minimum=rule.minimum,
            description=description[:200],
        )
        for rule, description in rules
    ]
    session.add_all(rows)
    profile.revision += 1
    session.flush()
    return rows


def add_rules(
    session: Session, pbx: Pbx, profile: CostProfile, inputs: Iterable[RuleInput], *, replace: bool = False
) -> list[CostRule]:
    """Add rules (or, with ``replace``, make them the profile's only rules).

    All or nothing: every rule is checked, then the profile as it would be
    (duplicates, currency); the first problem is refused with its reason.
    """
    new: list[tuple[Rule, str]] = []
    for number, given in enumerate(inputs, start=1):
        try:
            new.append((given.rule(profile), given.description))
        except RuleConflict as exc:
            raise RuleConflict("profile.rule_n", number=number, reason=exc.phrase()) from None
    existing = [] if replace else [as_rule(r, profile.currency) for r in rules_of(session, profile)]
    keys = {r.key for r in existing}
    for rule, _ in new:
        if rule.key in keys:
            raise RuleConflict("profile.has_rule", name=repr(profile.name), rule=_describe(rule))
        keys.add(rule.key)
    Tariff([*existing, *(rule for rule, _ in new)])  # the profile as it would be must compile
    if replace:
        for row in rules_of(session, profile):
            session.delete(row)
        session.flush()
    return _store(session, pbx, profile, new)


def _describe(rule: Rule) -> Phrase:
    if rule.match is Match.OTHER:
        return Phrase("profile.all_other")
    return Phrase("profile.rule", {"match": rule.match.value, "digits": rule.digits})


def remove_rule(session: Session, profile: CostProfile, match: str, digits: str = "") -> None:
    for row in rules_of(session, profile):
        if row.match.value == match and row.digits == digits:
            session.delete(row)
            profile.revision += 1
            session.flush()
            return
    raise ProfileError("profile.no_rule", name=repr(profile.name), match=match, digits=digits)


def rule_view(row: CostRule, currency: str) -> dict[str, str | int]:
    return {
        "match": row.match.value,
        "digits": row.digits,
        "connection_fee": format_amount(row.connection_fee),
        "per_minute": format_amount(row.per_minute),
        "first_increment": row.first_increment,
        "next_increment": row.next_increment,
        "minimum": format_amount(row.minimum),
        "currency": currency,
        "description": row.description,
    }


# -- CSV (operators keep tariffs in spreadsheets) ---------------------------
def export_csv(session: Session, profile: CostProfile) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rules_of(session, profile):
        writer.writerow({key: csv_field(value) for key, value in rule_view(row, profile.currency).items()})
    return out.getvalue()


def parse_csv(text: str) -> list[tuple[int, RuleInput]]:
    """(line number, rule) pairs; a comma or semicolon separates (spreadsheets
    in Italy save with ';' and a decimal comma). Each problem names its line."""
    sample = text[:4096]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")), delimiter=delimiter)
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = {"match", "digits", "per_minute"} - set(header)
    if missing:
        raise RuleConflict("profile.csv_missing", missing=sorted(missing), columns=CSV_COLUMNS)
    unknown = set(header) - set(CSV_COLUMNS)
    if unknown:
        raise RuleConflict("profile.csv_unknown", unknown=sorted(unknown), columns=CSV_COLUMNS)
    rows: list[tuple[int, RuleInput]] = []
    for raw in reader:
        # unquote: our own export wrote a text that looks like a formula with an apostrophe
        cells = {k.strip().lower(): unquote((v or "").strip()) for k, v in raw.items() if k is not None}
        if not any(cells.values()):
            continue
        try:
            given = RuleInput(
                match=cells.get("match", ""),
                digits=cells.get("digits", ""),
                connection_fee=_decimal(cells.get("connection_fee") or "0"),
                per_minute=_decimal(cells.get("per_minute") or "0"),
                first_increment=int(cells.get("first_increment") or 60),
                next_increment=int(cells.get("next_increment") or 60),
                minimum=_decimal(cells.get("minimum") or "0"),
                currency=cells.get("currency", ""),
                description=cells.get("description", ""),
            )
        except ValueError:
            raise RuleConflict("profile.csv_increments", line=reader.line_num) from None
        rows.append((reader.line_num, given))
    return rows


def _decimal(text: str) -> str:
    """'0,05' (a decimal comma) -> '0.05'."""
    return text.replace(",", ".") if text.count(",") == 1 and "." not in text else text


def import_csv(session: Session, pbx: Pbx, profile: CostProfile, text: str, *, replace: bool) -> list[CostRule]:
    """All or nothing, like ``add_rules``; a problem names its CSV line."""
    parsed = parse_csv(text)
    seen: dict[str, int] = {}
    for line, given in parsed:
        try:
            rule = given.rule(profile)
        except RuleConflict as exc:
            raise RuleConflict("profile.csv_line", line=line, reason=exc.phrase()) from None
        if rule.key in seen:
            raise RuleConflict("profile.csv_twice", line=line, rule=_describe(rule), first=seen[rule.key])
        seen[rule.key] = line
    return add_rules(session, pbx, profile, [given for _, given in parsed], replace=replace)
