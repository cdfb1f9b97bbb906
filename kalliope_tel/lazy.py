"""Modules loaded on first use, for command-line start-up time.

The CLI builds its whole command tree at start-up; importing SQLAlchemy and
the engines there cost about two seconds per command on the target machines.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)
