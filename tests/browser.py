"""Debian's Chromium driven by Playwright, and where screenshots go.

Playwright cannot download its own browsers here; it drives the Chromium
that the set-up commands install from Debian's packages. Screenshots are
test artifacts, kept in ``$KALLIOPE_TEST_ARTIFACTS`` (default
``test-artifacts/`` in the checkout, ignored by git)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("KALLIOPE_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("KALLIOPE_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts"))


def screenshot(page: Any, name: str) -> Path:
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()
