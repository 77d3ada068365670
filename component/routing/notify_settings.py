"""A customer's notification settings over XMPP: ``urn:orgchat:notify:0`` IQs and
XEP-0050 ad-hoc commands on the service domain.

* IQ get ``<settings/>``: the settings; IQ set ``<settings/>``: change them (a
  new email address gets a confirmation code); ``<confirm/>``: confirm it;
  ``<subscribe/>``: register a Web Push subscription (RFC 8030). See
  :mod:`extensions.notify`.
* Ad-hoc commands "Notification settings" (``notifications``) and "Confirm
  email address" (``confirm-email``) do the same from standard clients.

The rules are :class:`component.notify.preferences.Preferences`'.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element

from slixmpp.stanza import Iq

import extensions.notify as nt
from component.notify.preferences import Preferences
from component.routing import domain_iq
from component.routing.commands import Command, Context, Done, Next, Step, Target
from component.routing.errors import NotImplementedPayload
from component.routing.forms import Field, Form, SubmittedForm
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
            },
            nt.PayloadError,
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
                await self.preferences.set_email(address, change.email)
        return await self.view(address)

    async def confirm(self, iq: Iq, payload: Element) -> Element | None:
        await self.preferences.confirm_email(iq["from"].bare, nt.parse_confirm(payload))
        return await self.view(iq["from"].bare)

    async def subscribe(self, iq: Iq, payload: Element) -> Element | None:
        if self.push_key is None:
            raise NotImplementedPayload("Web push is not enabled on this service")
        sub = nt.parse_subscribe(payload)
        await self.preferences.add_push(iq["from"].bare, sub.endpoint, sub.p256dh, sub.auth)
        return None


class NotificationSettings(Command):
    node = "notifications"
    name = "Notification settings"
    target = Target.DOMAIN

    def __init__(self, preferences: Preferences) -> None:
        self.preferences = preferences

    async def start(self, ctx: Context) -> Step:
        current = await self.preferences.get(ctx.requester.bare)
        contact = current.contact
        status = (
            f"Emails go to {contact.email}." if contact.email else "No confirmed email address yet."
        )
        if contact.pending_email and contact.pending_email != contact.email:
            status += f" {contact.pending_email} waits for its confirmation code."
        return Next(
            "settings",
            Form(
                title=self.name,
                instructions=(
                    "When you are offline and a company writes to you, orgchat first "
                    "notifies your devices (web push), then sends one email if the "
                    f"message stays unread. {status} Push: {current.push_devices} "
                    "device(s) registered."
                ),
                fields=[
                    Field.text_single(
                        "email",
                        "Email address",
                        desc="A new address gets a confirmation code",
                        default=contact.email or None,
                    ),
                    Field.boolean("email-on", "Emails", default=not contact.email_opt_out),
                    Field.boolean(
                        "push-on", "Push notifications", default=not contact.push_opt_out
                    ),
                    Field.text_single(
                        "quiet-hours",
                        "Quiet hours",
                        desc="No push and no email then, e.g. 22:00-07:00; empty: none",
                        default=contact.quiet_hours,
                    ),
                    Field.text_single(
                        "timezone",
                        "Your time zone",
                        desc="e.g. Europe/Berlin",
                        default=contact.quiet_timezone or "UTC",
                    ),
                ],
            ),
        )

    async def submit(self, ctx: Context, stage: str, form: SubmittedForm) -> Step:
        address = ctx.requester.bare
        current = (await self.preferences.get(address)).contact
        await self.preferences.set_opt_out(
            address, Channel.EMAIL, not form.boolean("email-on", default=True)
        )
        await self.preferences.set_opt_out(
            address, Channel.PUSH, not form.boolean("push-on", default=True)
        )
        await self.preferences.set_quiet_hours(
            address,
            form.text("quiet-hours", required=False, max_chars=20, label="Quiet hours"),
            form.text("timezone", required=False, max_chars=64, label="Your time zone"),
        )
        email = form.text("email", required=False, max_chars=254, label="Email address")
        if email and email.strip().lower() != (current.email or "").lower():
            sent_to = await self.preferences.set_email(address, email)
            return Done(
                note=f"Settings saved. A confirmation code was sent to {sent_to}: enter it "
                "with the command “Confirm email address”."
            )
        return Done(note="Settings saved.")


class ConfirmEmail(Command):
    node = "confirm-email"
    name = "Confirm email address"
    target = Target.DOMAIN

    def __init__(self, preferences: Preferences) -> None:
        self.preferences = preferences

    async def start(self, ctx: Context) -> Step:
        return Next(
            "code",
            Form(
                title=self.name,
                fields=[Field.text_single("code", "Code from the email", required=True)],
            ),
        )

    async def submit(self, ctx: Context, stage: str, form: SubmittedForm) -> Step:
        code = form.text("code", label="Code from the email", max_chars=20)
        email = await self.preferences.confirm_email(ctx.requester.bare, code)
        return Done(note=f"Confirmed: notifications may now go to {email}.")


def notify_commands(preferences: Preferences) -> list[Command]:
    return [NotificationSettings(preferences), ConfirmEmail(preferences)]
