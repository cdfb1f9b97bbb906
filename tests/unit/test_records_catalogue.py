"""The administration pages described in ``web/records.py``: every label,
hint, option and question of each page, and every page link's label, group
and line in the hub, has its text in Italian and English."""

from __future__ import annotations

import importlib

import pytest

from kalliope_tel import catalogue
from kalliope_tel.features.base import Visitor
from kalliope_tel.features.registry import enabled_features
from kalliope_tel.web import records
from kalliope_tel.web.app import CORE_WEB
from kalliope_tel.web.navigation import CORE_PAGES

pytestmark = pytest.mark.unit


def _load_every_web_module() -> None:
    for target in [*CORE_WEB, *(f.web for f in enabled_features() if f.web)]:
        importlib.import_module(target.split(":")[0])


def test_every_described_page_reads_in_both_languages() -> None:
    _load_every_web_module()
    assert {p.path for p in records.PAGES} >= {"admin/templates", "admin/classes"}
    missing = {
        (page.path, key, lang)
        for page in records.PAGES
        for key in page.catalogue_keys()
        for lang in catalogue.LANGUAGES
        if key not in catalogue.messages(lang)
    }
    assert missing == set()


class _NoRows:
    """A session for features' page lists that look rows up (LAM owners): none here."""

    def scalar(self, *_args: object, **_kw: object) -> int:
        return 0

    def scalars(self, *_args: object, **_kw: object) -> list[object]:
        return []

    def get(self, *_args: object, **_kw: object) -> object:
        """The visitor's PBX, with every module (the hotel's pages exist only where it is on)."""
        from types import SimpleNamespace

        return SimpleNamespace(hotel_enabled=True)


def test_every_page_link_has_its_label_group_and_line_in_both_languages() -> None:
    admin = Visitor(1, 1, frozenset({"admin"}))
    links = [link for link, _role in CORE_PAGES]
    for feature in enabled_features():
        if feature.pages is not None:
            links += feature.pages(_NoRows(), admin)  # type: ignore[arg-type]
    assert any(link.administration for link in links)
    keys = {k for link in links for k in (link.label, link.group, link.about) if k}
    keys |= {"nav.admin", "admin.intro"}
    assert {(k, lang) for k in keys for lang in catalogue.LANGUAGES if k not in catalogue.messages(lang)} == set()
    # Every administration page is listed in the hub, under a group.
    assert [link.path for link in links if link.administration and not link.group] == []
