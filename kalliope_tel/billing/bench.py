"""Rating speed: 1,000,000 calls against a 5,000-rule profile on one core
(CPU time of the rating loop, the calls made beforehand), the memory the
compiled profile takes, and, in the same run, the same rating done by one
SQL query per call (SQLite in memory, indexed) for comparison."""

from __future__ import annotations

import random
import sqlite3
import time
import tracemalloc
from dataclasses import asdict, dataclass

import typer

from kalliope_tel.billing.rating import Match, Rule, Tariff, cost, make_rule


@dataclass
class BillingBenchResult:
    calls: int
    rules: int
    calls_per_second: int
    ns_per_call: int
    unpriced: int
    profile_memory_kib: int
    loop_memory_growth_kib: int
    sql_calls: int
    sql_calls_per_second: int
    speedup_over_sql: float
    identical_to_sql: bool


def make_rules(count: int, rng: random.Random) -> list[Rule]:
    """Prefixes of 2 to 8 digits (country and operator codes), some exact numbers, one 'other'."""
    rules: dict[str, Rule] = {}
    while len(rules) < count - 1:
        if rng.random() < 0.1:
            digits = "0" + "".join(rng.choice("0123456789") for _ in range(9))
            rule = make_rule(
                "exact", digits, per_minute=f"0.{rng.randint(1, 999):03d}", first_increment=1, next_increment=1
            )
        else:
            digits = "00" + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 6)))
            rule = make_rule(
                "prefix",
                digits,
                connection_fee=f"0.{rng.randint(0, 99):02d}",
                per_minute=f"0.{rng.randint(1, 9999):04d}",
                first_increment=rng.choice([1, 30, 60]),
                next_increment=rng.choice([1, 6, 60]),
            )
        rules.setdefault(rule.key, rule)
    rules["other"] = make_rule("other", per_minute="0.50", minimum="0.10")
    return list(rules.values())


def make_calls(count: int, rules: list[Rule], rng: random.Random) -> list[tuple[str, int]]:
    keyed = [r for r in rules if r.digits]
    calls = []
    for _ in range(count):
        base = rng.choice(keyed).digits if rng.random() < 0.9 else "3" + str(rng.randint(10**8, 10**9))
        number = (base + "".join(rng.choice("0123456789") for _ in range(12)))[: max(len(base), 10)]
        calls.append((number, rng.choice([0, rng.randint(1, 3600)])))
    return calls


def _sql_rater(rules: list[Rule]) -> tuple[sqlite3.Connection, str]:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE rule (match TEXT, digits TEXT, fee INT, per_minute INT, first INT, next INT, minimum INT)")
    db.execute("CREATE INDEX ix_rule ON rule (match, digits)")
    db.executemany(
        "INSERT INTO rule VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (r.match.value, r.digits, r.connection_fee, r.per_minute, r.first_increment, r.next_increment, r.minimum)
            for r in rules
        ],
    )
    # Exact, else the longest prefix, else other: one query, as a straightforward implementation would.
    query = """
        SELECT match, digits, fee, per_minute, first, next, minimum FROM rule
        WHERE (match = 'exact' AND digits = :n)
           OR (match = 'prefix' AND :n >= digits AND :n < digits || ':' AND substr(:n, 1, length(digits)) = digits)
           OR match = 'other'
        ORDER BY CASE match WHEN 'exact' THEN 0 WHEN 'prefix' THEN 1 ELSE 2 END, length(digits) DESC
        LIMIT 1"""
    return db, query


def run(calls: int = 1_000_000, rules: int = 5_000, sql_calls: int = 20_000, seed: int = 7) -> BillingBenchResult:
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    rule_list = make_rules(rules, rng)
    call_list = make_calls(calls, rule_list, rng)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    tariff = Tariff(rule_list)
    profile_bytes = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()

    rate = tariff.rate
    unpriced = 0
    started = time.process_time()
    for number, seconds in call_list:
        if rate(number, seconds) is None:
            unpriced += 1
    cpu = time.process_time() - started

    tracemalloc.start()
    mark = tracemalloc.take_snapshot()
    for number, seconds in call_list[:100_000]:
        rate(number, seconds)
    growth = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(mark, "filename"))
    tracemalloc.stop()

    db, query = _sql_rater(rule_list)
    sample = call_list[:sql_calls]
    identical = True
    started = time.process_time()
    for number, seconds in sample:
        row = db.execute(query, {"n": number}).fetchone()
        if row is None:
            continue
        match, digits, fee, per_minute, first, following, minimum = row
        by_sql = cost(Rule(Match(match), digits, fee, per_minute, first, following, minimum), seconds)
        identical = identical and by_sql == (rate(number, seconds) or (None, -1))[1]
    sql_cpu = time.process_time() - started
    per_second = int(calls / cpu)
    sql_per_second = int(len(sample) / sql_cpu)
    return BillingBenchResult(
        calls=calls,
        rules=len(rule_list),
        calls_per_second=per_second,
        ns_per_call=int(cpu / calls * 1e9),
        unpriced=unpriced,
        profile_memory_kib=profile_bytes // 1024,
        loop_memory_growth_kib=max(growth, 0) // 1024,
        sql_calls=len(sample),
        sql_calls_per_second=sql_per_second,
        speedup_over_sql=round(per_second / sql_per_second, 1),
        identical_to_sql=identical,
    )


def bench_command(
    calls: int = typer.Option(1_000_000, help="Calls to rate."),
    rules: int = typer.Option(5_000, help="Rules in the profile."),
    sql_calls: int = typer.Option(20_000, help="Calls rated by one SQL query each, for comparison."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Billing: calls rated per second on one core against a large profile, and against SQL per call."""
    import json

    from kalliope_tel.cli.context import Steps, print_table

    with Steps(f"bench billing: rating {calls:,} calls against {rules:,} rules"):
        result = asdict(run(calls, rules, sql_calls))
    if as_json:
        print(json.dumps(result | {"target": {"calls_per_second": 200_000}}))
        return
    print_table("billing: rating", ["figure", "value"], [[k, v] for k, v in result.items()])
