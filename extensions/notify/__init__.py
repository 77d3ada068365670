"""Notification settings (``urn:orgchat:notify:0``): stanza code only.

See :mod:`extensions.notify.stanza`; docs/protocol.md documents it on the wire.
"""

from extensions.notify.stanza import (
    NS,
    PayloadError,
    SettingsChange,
    SettingsView,
    Subscription,
    parse_confirm,
    parse_settings,
    parse_subscribe,
    settings_element,
)

__all__ = [
    "NS",
    "PayloadError",
    "SettingsChange",
    "SettingsView",
    "Subscription",
    "parse_confirm",
    "parse_settings",
    "parse_subscribe",
    "settings_element",
]
