"""Cost profiles: which rule prices a number, increments, minimum, conflicts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalliope_tel.billing.rating import (
    Match,
    RuleConflict,
    Tariff,
    billed_seconds,
    cost,
    format_amount,
    make_rule,
)


def _tariff() -> Tariff:
    return Tariff(
        [
            make_rule("prefix", "06", connection_fee="0.10", per_minute="0.25", first_increment=30, next_increment=6),
            make_rule("prefix", "0612", per_minute="0.20", first_increment=60, next_increment=60),
            make_rule("exact", "0612345678", per_minute="0.01", first_increment=1, next_increment=1),
            make_rule("other", per_minute="0.50", minimum="0.30"),
        ]
    )


@pytest.mark.parametrize(
    ("number", "digits", "match"),
    [
        ("0612345678", "0612345678", Match.EXACT),  # exact beats the longer prefix
        ("0612999999", "0612", Match.PREFIX),  # longest prefix wins
        ("0699999999", "06", Match.PREFIX),
        ("112", "", Match.OTHER),
    ],
)
def test_exact_beats_prefix_beats_other(number: str, digits: str, match: Match) -> None:
    rule = _tariff().find(number)
    assert rule is not None and (rule.match, rule.digits) == (match, digits)


@pytest.mark.parametrize(
    ("seconds", "first", "following", "billed"),
    [(0, 30, 6, 0), (1, 30, 6, 30), (30, 30, 6, 30), (31, 30, 6, 36), (7, 60, 60, 60), (61, 60, 60, 120), (7, 1, 1, 7)],
)
def test_increments(seconds: int, first: int, following: int, billed: int) -> None:
    assert billed_seconds(seconds, first, following) == billed


def test_costs_follow_fee_price_increments_and_minimum() -> None:
    tariff = _tariff()
    rule, value = tariff.rate("0699999999", 7) or (None, 0)
    assert rule is not None and format_amount(value) == "0.2250"  # 0.10 + 30 s at 0.25/min
    assert format_amount(tariff.rate("0699999999", 31)[1]) == "0.2500"  # type: ignore[index]  # 36 s
    assert format_amount(tariff.rate("112", 10)[1]) == "0.5000"  # type: ignore[index]  # 60 s at 0.50
    assert format_amount(tariff.rate("112", 0)[1]) == "0.0000"  # type: ignore[index]  # not answered
    minimum = make_rule("other", per_minute="0.01", minimum="0.30")
    assert format_amount(cost(minimum, 5)) == "0.3000"


def test_a_number_matching_no_rule_is_not_priced() -> None:
    tariff = Tariff([make_rule("prefix", "06", per_minute="0.25")])
    assert tariff.rate("112", 10) is None


@pytest.mark.parametrize(
    ("rules", "reason"),
    [
        ([("prefix", "06"), ("prefix", "06")], "two rules for prefix:06"),
        ([("other", ""), ("other", "")], "two rules for other"),
        ([("exact", "112"), ("exact", "112")], "two rules for exact:112"),
    ],
)
def test_duplicate_rules_are_refused(rules: list[tuple[str, str]], reason: str) -> None:
    with pytest.raises(RuleConflict, match=reason):
        Tariff([make_rule(m, d, per_minute="0.1") for m, d in rules])


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"match": "prefix", "digits": "06a"}, "not a number"),
        ({"match": "other", "digits": "06"}, "has no digits"),
        ({"match": "maybe", "digits": "1"}, "exact, prefix or other"),
        ({"match": "exact", "digits": "1", "per_minute": "-1"}, "0 or more"),
        ({"match": "exact", "digits": "1", "per_minute": "0.00001"}, "at most 4 decimals"),
        ({"match": "exact", "digits": "1", "first_increment": 0}, "1 to 3600"),
        ({"match": "exact", "digits": "1", "currency": "euro"}, "three-letter"),
    ],
)
def test_bad_rule_values_are_refused(kwargs: dict[str, object], reason: str) -> None:
    with pytest.raises(RuleConflict, match=reason):
        make_rule(**kwargs)  # type: ignore[arg-type]


def test_one_currency_per_profile() -> None:
    with pytest.raises(RuleConflict, match="one currency"):
        Tariff([make_rule("prefix", "06", currency="EUR"), make_rule("other", currency="USD")])


@given(st.integers(0, 100_000), st.integers(1, 120), st.integers(1, 120))
def test_billed_seconds_cover_the_call_in_whole_steps(seconds: int, first: int, following: int) -> None:
    billed = billed_seconds(seconds, first, following)
    if seconds == 0:
        assert billed == 0
    else:
        assert billed >= seconds and billed >= first
        assert (billed - first) % following == 0
        assert billed - seconds < max(first, following)
