"""ARI Stasis applications: thin adapters running sans-IO call flows.

Each registers under the name the dialplan or an originate passes as the
first Stasis argument (``Stasis(${KALLIOPE_ARI_APP},<name>,...)``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kalliope_tel.asterisk.ari.runtime import AriRuntime
    from kalliope_tel.container import Container


def register(runtime: AriRuntime, container: Container) -> None:
    """Register every Stasis application (wake-up, fax... as they arrive)."""
