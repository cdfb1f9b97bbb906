"""Serve's mail job for reset and invitation links, run once: what the
tests read their links from (the ``mail`` fixture, a real SMTP server, is
in conftest)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from kalliope_tel.mail.owed import send_owed
from kalliope_tel.web.resets_web import _claim, _finish
from tests.web_node import RunningWeb


def send_owed_links(web: RunningWeb) -> int:
    """What serve's password-resets job does on one tick (in a thread of its
    own: Playwright's sync API keeps an event loop on this one)."""
    job = send_owed(web.container, "test-node", _claim, _finish, what="users.reset", send_seconds=20)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, job).result(timeout=60)
