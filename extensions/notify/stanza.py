"""Notification settings of a customer (``urn:orgchat:notify:0``).

No XEP describes how a user tells a service where to reach them off XMPP
(an email address to confirm, opt-outs, Web Push subscriptions of RFC 8030),
so these small payloads use orgchat's own namespace. They are IQs to the
component domain; standard clients do the same through the ad-hoc commands
"Notification settings" and "Confirm email address" (XEP-0050).

Read the settings (IQ get), answered with the same element filled in::

    <settings xmlns="urn:orgchat:notify:0"/>

    <settings xmlns="urn:orgchat:notify:0">
      <email confirmed="true">anna@example.org</email>
      <channel name="email" enabled="true"/>
      <channel name="push" enabled="true" devices="1"
               key="BPk...applicationServerKey..."/>
    </settings>

Change them (IQ set; every child optional; a new email is confirmed by a
code sent to it; an empty ``<quiet-hours/>`` clears them)::

    <settings xmlns="urn:orgchat:notify:0">
      <email>anna@example.org</email>
      <channel name="push" enabled="false"/>
      <quiet-hours tz="Europe/Berlin">22:00-07:00</quiet-hours>
    </settings>

Confirm an email address, register a push subscription, remove one (IQ set)::

    <confirm xmlns="urn:orgchat:notify:0" code="482913"/>
    <subscribe xmlns="urn:orgchat:notify:0" endpoint="https://push.example/abc"
               p256dh="BN...65 bytes, base64url" auth="16 bytes, base64url"/>
    <unsubscribe xmlns="urn:orgchat:notify:0" endpoint="https://push.example/abc"/>
"""

from __future__ import annotations

import dataclasses
import re
from xml.etree.ElementTree import Element, SubElement

from extensions.xml import PayloadError

NS = "urn:orgchat:notify:0"
CHANNELS = ("email", "push")
_BOOL = {"true": True, "1": True, "false": False, "0": False}
_CODE = re.compile(r"^[0-9]{6}$")
MAX_ATTR = 2000


@dataclasses.dataclass(frozen=True, slots=True)
class SettingsChange:
    email: str | None  #: a new address to confirm (None: unchanged)
    enabled: dict[str, bool]  #: channel -> on/off, for the channels given
    #: (spec, time zone); ("", None) clears them; None: unchanged
    quiet_hours: tuple[str, str | None] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class SettingsView:
    email: str | None
    email_confirmed: bool
    enabled: dict[str, bool]
    devices: int
    push_key: str | None  #: the VAPID public key, None if push is off
    quiet_hours: str | None = None
    quiet_timezone: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Subscription:
    endpoint: str
    p256dh: str
    auth: str


def _q(name: str) -> str:
    return f"{{{NS}}}{name}"


def _expect(el: Element, name: str) -> None:
    if el.tag != _q(name):
        raise PayloadError(f"Expected <{name} xmlns='{NS}'/>")


def parse_settings(el: Element) -> SettingsChange:
    _expect(el, "settings")
    email: str | None = None
    enabled: dict[str, bool] = {}
    quiet: tuple[str, str | None] | None = None
    for child in el:
        if child.tag == _q("email"):
            email = (child.text or "").strip()
            if not email or len(email) > 254:
                raise PayloadError("<email/> must hold an address")
        elif child.tag == _q("channel"):
            name = child.get("name")
            if name not in CHANNELS:
                raise PayloadError(f"Unknown channel {name!r} (one of {', '.join(CHANNELS)})")
            value = _BOOL.get((child.get("enabled") or "").strip())
            if value is None:
                raise PayloadError("enabled must be true or false")
            enabled[name] = value
        elif child.tag == _q("quiet-hours"):
            spec = (child.text or "").strip()
            if len(spec) > 20:
                raise PayloadError("<quiet-hours/> holds HH:MM-HH:MM")
            quiet = (spec, (child.get("tz") or "").strip() or None)
        else:
            raise PayloadError(f"Unexpected {child.tag} in <settings/>")
    return SettingsChange(email, enabled, quiet)


def settings_element(view: SettingsView) -> Element:
    el = Element(_q("settings"))
    if view.email:
        email = SubElement(el, _q("email"), confirmed="true" if view.email_confirmed else "false")
        email.text = view.email
    for name in CHANNELS:
        attrs = {"name": name, "enabled": "true" if view.enabled.get(name, True) else "false"}
        if name == "push":
            attrs["devices"] = str(view.devices)
            if view.push_key:
                attrs["key"] = view.push_key
        SubElement(el, _q("channel"), attrs)
    if view.quiet_hours:
        quiet = SubElement(el, _q("quiet-hours"), tz=view.quiet_timezone or "UTC")
        quiet.text = view.quiet_hours
    return el


def parse_confirm(el: Element) -> str:
    _expect(el, "confirm")
    code = (el.get("code") or "").strip()
    if not _CODE.match(code):
        raise PayloadError("code must be the six digits of the confirmation email")
    return code


def parse_subscribe(el: Element) -> Subscription:
    _expect(el, "subscribe")
    values = {}
    for name in ("endpoint", "p256dh", "auth"):
        value = (el.get(name) or "").strip()
        if not value or len(value) > MAX_ATTR:
            raise PayloadError(f"{name} is required")
        values[name] = value
    return Subscription(values["endpoint"], values["p256dh"], values["auth"])


def parse_unsubscribe(el: Element) -> str:
    """The endpoint of the subscription to remove."""
    _expect(el, "unsubscribe")
    endpoint = (el.get("endpoint") or "").strip()
    if not endpoint or len(endpoint) > MAX_ATTR:
        raise PayloadError("endpoint is required")
    return endpoint
