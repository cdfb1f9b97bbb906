"""The billing feature. So far its rating engine and benchmark; call records,
cost profiles in the store, the hotel's costs and reports follow (issue:
Billing)."""

from __future__ import annotations

from kalliope_tel.features.base import Feature

FEATURE = Feature(
    name="billing",
    summary="Call costs from cost profiles (rating engine)",
    benches={"billing": "kalliope_tel.billing.bench:bench_command"},
)
