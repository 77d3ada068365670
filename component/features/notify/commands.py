"""A customer's notification settings from standard clients: XEP-0050 ad-hoc
commands "Notification settings" (``notifications``) and "Confirm email
address" (``confirm-email``) on the service domain, doing what the
``urn:orgchat:notify:0`` IQs (:mod:`.iq`) do.
"""

from __future__ import annotations

from component.features.notify.preferences import Preferences
from component.routing.commands import Command, Context, Done, Next, Step, Target
from extensions.forms import Field, Form
from extensions.submitted_form import SubmittedForm
from storage.models import Channel


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
