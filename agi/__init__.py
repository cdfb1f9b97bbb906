"""FastAGI handlers: thin adapters that parse the request, call a service and answer.

Each module registers its handlers here; the dialplan reaches them as
``AGI(${KALLIOPE_AGI}/<name>?k=v)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kalliope_tel.asterisk.agi.server import AgiRouter
    from kalliope_tel.container import Container


def register(router: AgiRouter, container: Container) -> None:
    from agi import diagnostics, hotel

    diagnostics.register(router, container)
    hotel.register(router, container)
