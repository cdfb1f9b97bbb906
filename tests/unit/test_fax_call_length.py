"""A sending call's limit grows with the fax: a fixed 900 s cap failed a
200-page job on every attempt (at 9600 bit/s a page takes 10-30 s)."""

from __future__ import annotations

import pytest

from kalliope_tel.fax.jobs import LEASE_MARGIN, SendClaim, call_seconds
from kalliope_tel.fax.session import FaxOptions

pytestmark = pytest.mark.unit


def test_the_call_limit_is_sized_from_the_pages() -> None:
    assert call_seconds(1) == call_seconds(0) == 900.0  # short faxes keep the old limit
    assert call_seconds(200) == 120 + 90 * 200  # five hours for the largest fax a job may hold
    assert all(call_seconds(n + 1) >= call_seconds(n) for n in range(300))
    claim = SendClaim(1, 1, "default", "office", "601", "Local/601@x", "d.tif", FaxOptions(), 1, "c", pages=50)
    assert claim.max_seconds == call_seconds(50) > 900
    assert LEASE_MARGIN.total_seconds() > 0  # the job's lease outlasts its call
