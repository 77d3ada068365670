"""A customer's notification settings over XMPP: the ``urn:orgchat:notify:0`` IQs.

* IQ get ``<settings/>``: the settings; IQ set ``<settings/>``: change them (a
  new email address gets a confirmation code); ``<confirm/>``: confirm it;
  ``<subscribe/>``: register a Web Push subscription (RFC 8030),
  ``<unsubscribe/>``: remove one (notifications turned off on a device). See
  :mod:`extensions.notify`. Standard clients do the same through the ad-hoc
  commands of :mod:`.commands`.

The rules are :class:`component.features.notify.preferences.Preferences`'.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element

from slixmpp.stanza import Iq

from component.errors import NotImplementedPayload
from component.features.notify.preferences import Preferences
from component.i18n import _, stanza_lang
from component.routing import domain_iq
from extensions.notify import stanza as nt
from storage.models import Channel


class NotifyIqHandlers:
    def __init__(self, preferences: Preferences, push_key: str | None) -> None:
        self.preferences = preferences
        self.push_key = push_key

    def register(self, xmpp: Any) -> None:
        domain_iq.register(
            xmpp,
            nt.NS,
            {
                ("settings", None): self.settings,
                ("confirm", "set"): self.confirm,
                ("subscribe", "set"): self.subscribe,
                ("unsubscribe", "set"): self.unsubscribe,
            },
        )

    async def view(self, address: str) -> Element:
        current = await self.preferences.get(address)
        contact = current.contact
        return nt.settings_element(
            nt.SettingsView(
                email=contact.email or contact.pending_email,
                email_confirmed=contact.email is not None,
                enabled={"email": not contact.email_opt_out, "push": not contact.push_opt_out},
                devices=current.push_devices,
                push_key=self.push_key,
                quiet_hours=contact.quiet_hours,
                quiet_timezone=contact.quiet_timezone,
            )
        )

    async def settings(self, iq: Iq, payload: Element) -> Element | None:
        address = iq["from"].bare
        if iq["type"] == "set":
            change = nt.parse_settings(payload)
            for name, on in change.enabled.items():
                await self.preferences.set_opt_out(address, Channel(name), not on)
            if change.quiet_hours is not None:
                await self.preferences.set_quiet_hours(address, *change.quiet_hours)
            if change.email is not None:
                await self.preferences.set_email(address, change.email, stanza_lang(iq.xml))
        return await self.view(address)

    async def confirm(self, iq: Iq, payload: Element) -> Element | None:
        await self.preferences.confirm_email(iq["from"].bare, nt.parse_confirm(payload))
        return await self.view(iq["from"].bare)

    async def subscribe(self, iq: Iq, payload: Element) -> Element | None:
        if self.push_key is None:
            raise NotImplementedPayload(_("Web push is not enabled on this service"))
        sub = nt.parse_subscribe(payload)
        await self.preferences.add_push(iq["from"].bare, sub.endpoint, sub.p256dh, sub.auth)
        return None

    async def unsubscribe(self, iq: Iq, payload: Element) -> Element | None:
        await self.preferences.remove_push(iq["from"].bare, nt.parse_unsubscribe(payload))
        return None
