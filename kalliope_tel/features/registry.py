"""The list of features, in the order their dialplan contexts are searched."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from kalliope_tel.errors import KalliopeError
from kalliope_tel.features.base import Feature

if TYPE_CHECKING:
    from kalliope_tel.container import Container

# name -> module whose FEATURE declares it. Order matters: the hotel's rooms
# and service codes are matched before later features' numbers.
ALL_FEATURES: dict[str, str] = {
    "hotel": "kalliope_tel.hotel.feature",
    "wakeup": "kalliope_tel.wakeup.feature",
    "fax": "kalliope_tel.fax.feature",
    "mail2fax": "kalliope_tel.mail2fax.feature",
    "billing": "kalliope_tel.billing.feature",
    "lam": "kalliope_tel.lam.feature",
    "trunks": "kalliope_tel.trunks.feature",
    "groups": "kalliope_tel.groups.feature",
    "directory": "kalliope_tel.directory.feature",
    "pms": "kalliope_tel.pms.feature",
    "omnia": "kalliope_tel.omnia.feature",
    "web": "kalliope_tel.web.feature",
}


def partner_runs(container: Container, feature: Feature, partner: str) -> bool:
    """Whether ``partner``, which ``feature`` declares in ``uses``, is enabled
    on this node. An undeclared partner is a programming error."""
    if partner not in feature.uses:
        raise ValueError(f"feature {feature.name!r} does not declare {partner!r} in its uses")
    return any(f.name == partner for f in container.features)


def partner_function(feature: Feature, partner: str, name: str) -> Callable[..., Any]:
    """The function ``partner`` lends as ``name`` (its ``provides``) to
    ``feature``, which declares it in ``uses``. An undeclared partner or an
    unknown name is a programming error."""
    if partner not in feature.uses:
        raise ValueError(f"feature {feature.name!r} does not declare {partner!r} in its uses")
    target = load_feature(partner).provides.get(name)
    if target is None:
        raise ValueError(f"feature {partner!r} provides no {name!r}")
    module, _, attribute = target.partition(":")
    function: Callable[..., Any] = getattr(importlib.import_module(module), attribute)
    return function


def load_feature(name: str) -> Feature:
    module = importlib.import_module(ALL_FEATURES[name])
    feature: Feature = module.FEATURE
    return feature


def enabled_features(names: Iterable[str] | None = None) -> list[Feature]:
    """The features named (all when None), in registry order."""
    wanted = list(ALL_FEATURES) if names is None else list(names)
    unknown = sorted(set(wanted) - set(ALL_FEATURES))
    if unknown:
        raise KalliopeError(f"unknown feature(s) {', '.join(unknown)}; known: {', '.join(ALL_FEATURES)}")
    return [load_feature(name) for name in ALL_FEATURES if name in wanted]
