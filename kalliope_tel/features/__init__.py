"""Feature plugins: each module declares, in one place, what it brings.

A feature (hotel, wake-up, fax, and each one that follows) is a ``Feature``
value in its package's ``feature.py``. ``serve`` registers its FastAGI
handlers, builds its Stasis applications on every Asterisk link and
supervises its background jobs; ``doctor`` runs its checks; the generator
asks it for its dialplan and PJSIP fragments per PBX; the CLI mounts its
command group; ``bench`` its benchmarks; the test fixtures iterate the same
list. Nothing wires a module by hand.

Which features run is the ``features`` setting (default: all of them).
"""

from kalliope_tel.features.base import (
    AsteriskLink,
    DialplanFragment,
    Feature,
    Job,
    ServeContext,
)
from kalliope_tel.features.registry import ALL_FEATURES, enabled_features, load_feature

__all__ = [
    "ALL_FEATURES",
    "AsteriskLink",
    "DialplanFragment",
    "Feature",
    "Job",
    "ServeContext",
    "enabled_features",
    "load_feature",
]
