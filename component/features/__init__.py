"""Every feature of the component, one package each (see :mod:`component.feature`).

The order is the order of their routing hooks (:mod:`component.routing.hooks`)
and of their additions to disco#info. Adding a feature is one package and one
line here.
"""

from __future__ import annotations

from component.feature import Feature
from component.features.desk import Desk
from component.features.directory import DirectoryFeature
from component.features.guests import Guests
from component.features.history import History
from component.features.notify import Notify
from component.features.requests import Requests

FEATURES: tuple[type[Feature], ...] = (
    DirectoryFeature,
    History,
    Desk,
    Requests,
    Notify,
    Guests,
)
