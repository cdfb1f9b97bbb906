"""Pricing a call with a cost profile, as KalliopePBX's debit service does:
rules by exact number, by prefix (the longest wins) and "all other numbers";
exact beats prefix beats others. Each rule: connection fee, price per
minute, billing increments (first and next: 60/60, 30/6, 1/1), minimum
charge, currency.

Amounts are whole ten-thousandths of the currency unit (``int``), so rating
is integer arithmetic (exact, and fast enough to re-rate millions of calls);
``format_amount`` turns them into text. A call that matches no rule is not
priced at 0: ``Tariff.rate`` returns None and the caller records it as
unpriced.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from kalliope_tel.catalogue import Term
from kalliope_tel.errors import KalliopeError

UNIT = 10_000  # amounts are in ten-thousandths


class RuleConflict(KalliopeError):
    pass


class Match(enum.StrEnum):
    EXACT = "exact"
    PREFIX = "prefix"
    OTHER = "other"


@dataclass(frozen=True)
class Rule:
    match: Match
    digits: str  # "" for OTHER
    connection_fee: int  # ten-thousandths
    per_minute: int  # ten-thousandths
    first_increment: int = 60  # seconds
    next_increment: int = 60  # seconds
    minimum: int = 0  # ten-thousandths
    currency: str = "EUR"

    @property
    def key(self) -> str:
        return f"{self.match.value}:{self.digits}" if self.match is not Match.OTHER else "other"


def amount(text: str | Decimal | int | float, what: str = "what.amount") -> int:
    """'0.0125' -> 125 ten-thousandths; refuses negatives and finer precision."""
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise RuleConflict("rate.not_number", what=Term(what), text=repr(text)) from None
    if value < 0 or value != value.quantize(Decimal("0.0001")):
        raise RuleConflict("rate.amount", what=Term(what), text=repr(text))
    return int(value * UNIT)


def format_amount(value: int) -> str:
    return str((Decimal(value) / UNIT).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def currency_code(currency: str) -> str:
    if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
        raise RuleConflict("rate.currency", currency=repr(currency))
    return currency


def make_rule(
    match: str,
    digits: str = "",
    *,
    connection_fee: str | Decimal | int = 0,
    per_minute: str | Decimal | int = 0,
    first_increment: int = 60,
    next_increment: int = 60,
    minimum: str | Decimal | int = 0,
    currency: str = "EUR",
) -> Rule:
    """A rule from operator values, each checked with the reason."""
    try:
        kind = Match(match)
    except ValueError:
        raise RuleConflict("rate.match", match=repr(match)) from None
    digits = digits.strip()
    if kind is Match.OTHER:
        if digits:
            raise RuleConflict("rate.other_digits")
    elif not digits or len(digits) > 32 or not digits.lstrip("+").isdigit():
        raise RuleConflict("rate.digits", kind=kind.value, digits=repr(digits))
    for name, seconds in (("what.first_increment", first_increment), ("what.next_increment", next_increment)):
        if not isinstance(seconds, int) or not 1 <= seconds <= 3600:
            raise RuleConflict("rate.increment", what=Term(name))
    currency_code(currency)
    return Rule(
        kind,
        digits,
        amount(connection_fee, "what.connection_fee"),
        amount(per_minute, "what.per_minute"),
        first_increment,
        next_increment,
        amount(minimum, "what.minimum"),
        currency,
    )


def billed_seconds(seconds: int, first: int, following: int) -> int:
    """Seconds charged: nothing for an unanswered call, at least ``first``,
    then whole ``following`` steps (30/6: 7 s -> 30, 31 s -> 36)."""
    if seconds <= 0:
        return 0
    if seconds <= first:
        return first
    steps = -(-(seconds - first) // following)
    return first + steps * following


def cost(rule: Rule, seconds: int) -> int:
    """The call's cost in ten-thousandths, rounded half up; 0 when unanswered."""
    billed = billed_seconds(seconds, rule.first_increment, rule.next_increment)
    if billed == 0:
        return 0
    value = rule.connection_fee + (rule.per_minute * billed + 30) // 60
    return max(value, rule.minimum)


class Tariff:
    """A profile's rules, compiled for lookup: one dict for exact numbers,
    one per prefix length (longest first), and the 'other' rule."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.exact: dict[str, Rule] = {}
        prefixes: dict[int, dict[str, Rule]] = {}
        self.other: Rule | None = None
        seen: set[str] = set()
        for rule in rules:
            if rule.key in seen:
                raise RuleConflict("rate.two_rules", key=rule.key)
            seen.add(rule.key)
            if rule.match is Match.EXACT:
                self.exact[rule.digits] = rule
            elif rule.match is Match.PREFIX:
                prefixes.setdefault(len(rule.digits), {})[rule.digits] = rule
            else:
                self.other = rule
        # Longest prefix first: the first hit is the longest match.
        self.by_length = [(length, prefixes[length]) for length in sorted(prefixes, reverse=True)]
        currencies = {r.currency for r in self.rules()}
        if len(currencies) > 1:
            raise RuleConflict("rate.currencies", found=sorted(currencies))

    def rules(self) -> list[Rule]:
        out = list(self.exact.values())
        for _, table in self.by_length:
            out.extend(table.values())
        if self.other is not None:
            out.append(self.other)
        return out

    def find(self, number: str) -> Rule | None:
        rule = self.exact.get(number)
        if rule is not None:
            return rule
        size = len(number)
        for length, table in self.by_length:
            if length <= size:
                rule = table.get(number[:length])
                if rule is not None:
                    return rule
        return self.other

    def rate(self, number: str, seconds: int) -> tuple[Rule, int] | None:
        """(the rule that priced it, cost), or None: no rule matches."""
        rule = self.find(number)
        if rule is None:
            return None
        return rule, cost(rule, seconds)
