"""The shape of the code, read from its imports (every import statement,
top-level or inside a function, so a lazy import hides nothing):

- the core never imports a feature (features plug into the core, not the
  other way round; ``db/models.py`` lists every model for alembic);
- no feature imports another feature's ``models`` for core rows (PBXs,
  extensions, SIP accounts, outbound classes, users, accounts, and the
  same-PBX key helpers are the core's);
- feature packages import each other without cycles (a feature that uses
  another asks through ``Feature.uses`` and ``provides``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "kalliope_tel"
FEATURES = {"hotel", "wakeup", "fax", "mail2fax", "billing", "lam", "omnia", "trunks", "groups", "directory", "pms"}
CORE = ["accounts", "changes", "db", "extensions", "oplog", "tenancy", "users", "features", "asterisk", "web"]
CORE_FILES = ["dialplan/generator.py", "dialplan/extensions.py", "dialplan/naming.py", "tables.py", "container.py"]
ALLOWED = {"db/models.py"}  # the list of every model, for alembic
CORE_MODELS = ["tenancy/models.py", "extensions/models.py", "users/models.py", "accounts/models.py"]


def imports(path: Path) -> Iterator[tuple[str, list[str], int]]:
    """(module, names, line) of every import of a kalliope_tel module in the file."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("kalliope_tel"):
                yield node.module, [a.name for a in node.names], node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("kalliope_tel"):
                    yield alias.name, [], node.lineno


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imported_features(module: str, names: list[str]) -> set[str]:
    """Features a statement reaches: ``from kalliope_tel.hotel import services`` and
    ``from kalliope_tel import hotel`` both reach hotel."""
    found = {package_of(module)} & FEATURES
    if module == "kalliope_tel":
        found |= set(names) & FEATURES
    return found


def files_of(relative: str) -> list[Path]:
    path = PACKAGE / relative
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


def test_the_core_never_imports_a_feature() -> None:
    offences = []
    for relative in CORE + CORE_FILES:
        for path in files_of(relative):
            if str(path.relative_to(PACKAGE)) in ALLOWED:
                continue
            for module, names, line in imports(path):
                if imported_features(module, names):
                    offences.append(f"{path.relative_to(PACKAGE)}:{line} imports {module}")
    assert offences == []


def core_row_names() -> set[str]:
    names = {"same_pbx", "pbx_row", "PbxOwned"}
    for relative in CORE_MODELS:
        tree = ast.parse((PACKAGE / relative).read_text())
        names |= {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    return names


def test_no_feature_takes_core_rows_from_another_feature() -> None:
    core = core_row_names()
    offences = []
    for feature in sorted(FEATURES):
        for path in files_of(feature):
            for module, names, line in imports(path):
                other = package_of(module)
                if other in FEATURES and other != feature and module.endswith(".models") and set(names) & core:
                    offences.append(f"{path.relative_to(PACKAGE)}:{line} takes {set(names) & core} from {module}")
    # And no feature's models define them again (a second Pbx or SipAccount).
    for feature in sorted(FEATURES):
        models = PACKAGE / feature / "models.py"
        if models.is_file():
            defined = {
                n.name for n in ast.parse(models.read_text()).body if isinstance(n, ast.ClassDef | ast.FunctionDef)
            }
            offences += [f"{feature}/models.py defines {name}" for name in sorted(defined & core)]
    assert offences == []


def feature_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {f: set() for f in FEATURES}
    for feature in FEATURES:
        for path in files_of(feature):
            for module, names, _line in imports(path):
                graph[feature] |= imported_features(module, names) - {feature}
    return graph


def test_features_import_each_other_without_cycles() -> None:
    graph = feature_graph()
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt in path:
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif len(path) < len(FEATURES):
                visit(nxt, [*path, nxt])

    for start in sorted(FEATURES):
        visit(start, [start])
    assert cycles == []


def test_the_reader_sees_lazy_imports() -> None:
    """The test can fail: an import inside a function is read too."""
    sample = PACKAGE.parent / "tests" / "unit" / "_imports_sample.py"
    sample.write_text("def f():\n    from kalliope_tel.hotel.models import Room\n    return Room\n")
    try:
        assert list(imports(sample)) == [("kalliope_tel.hotel.models", ["Room"], 2)]
    finally:
        sample.unlink()
