"""The one catalogue: both languages complete, the same placeholders in each,
every code the sources raise present, and the modules whose refusals reach
people (pages, the API) raising codes, never English sentences."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from kalliope_tel import catalogue
from kalliope_tel.catalogue import Phrase, Term
from kalliope_tel.errors import KalliopeError

pytestmark = pytest.mark.unit
PACKAGE = Path(catalogue.__file__).parent.parent  # kalliope_tel/
CODE = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+")
# Whose refusals a receptionist, a fax user, a meeting owner or an
# administrator reads in the browser: each raises catalogue codes only.
PEOPLE_FACING = [
    "hotel/stays.py",
    "wakeup/services.py",
    "fax/jobs.py",
    "fax/config.py",
    "hotel/services.py",
    "hotel/templates_web.py",
    "wakeup/series.py",
    "fax/web.py",
    "fax/documents.py",
    "lam/services.py",
    "web/deps.py",
    "web/access.py",
    "attempts.py",
]


def test_both_languages_have_every_code_with_the_same_placeholders() -> None:
    en, it = catalogue.messages("en"), catalogue.messages("it")
    assert sorted(set(en) ^ set(it)) == []
    differ = {k: (en[k], it[k]) for k in en if catalogue.placeholders(en[k]) != catalogue.placeholders(it[k])}
    assert differ == {}
    assert [k for k in en if not en[k].strip() or not it[k].strip()] == []


def _raised_codes(tree: ast.AST) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for arg in node.args[:2]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and CODE.fullmatch(arg.value):
                    out.append((node.lineno, arg.value))
            for keyword in node.keywords:
                value = keyword.value
                if keyword.arg == "what" and isinstance(value, ast.Constant) and isinstance(value.value, str):
                    out.append((node.lineno, value.value))
    return out


def test_every_code_the_sources_raise_is_in_the_catalogue() -> None:
    missing = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                for line, code in _raised_codes(node.exc):
                    if not catalogue.has(code) and code.split(".")[0] in _PREFIXES:
                        missing.append(f"{path.relative_to(PACKAGE)}:{line} {code}")
    assert missing == []


_PREFIXES = {key.split(".")[0] for key in catalogue.messages("en")}


# Programming errors, and the base class kept for what only an operator
# reads (a converter missing from the machine, a node's own failure).
_NOT_FOR_PEOPLE = {"ValueError", "TypeError", "RuntimeError", "AssertionError", "KalliopeError"}


def _called(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


@pytest.mark.parametrize("module", PEOPLE_FACING)
def test_people_facing_modules_raise_codes_not_sentences(module: str) -> None:
    tree = ast.parse(PACKAGE.joinpath(module).read_text(encoding="utf-8"))
    sentences = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and _called(node.exc) not in _NOT_FOR_PEOPLE:
            for arg in node.exc.args[:2]:
                literal = isinstance(arg, ast.Constant) and isinstance(arg.value, str) and not CODE.fullmatch(arg.value)
                if literal or isinstance(arg, ast.JoinedStr):
                    sentences.append(f"{module}:{node.lineno}")
    assert sentences == []


def test_a_coded_error_reads_in_both_languages_and_nests() -> None:
    exc = KalliopeError(
        "fax.doc.refused", name="a.pdf", reason=Phrase("fax.doc.too_many_pages", {"pages": 300, "limit": 200})
    )
    assert str(exc) == "a.pdf: 300 pages: more than the 200 a fax may carry"
    assert exc.text("it") == "a.pdf: 300 pagine: più delle 200 che un fax può portare"
    state = KalliopeError("wakeup.nothing_to_cancel", id=3, state=Term("state.confirmed"))
    assert state.text("it") == "la sveglia 3 è confermata: niente da annullare"
    assert KalliopeError("a plain sentence").text("it") == "a plain sentence"  # operators' messages, as they are
