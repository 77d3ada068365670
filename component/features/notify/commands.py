"""A customer's notification settings from standard clients: XEP-0050 ad-hoc
commands "Notification settings" (``notifications``) and "Confirm email
address" (``confirm-email``) on the service domain, doing what the
``urn:orgchat:notify:0`` IQs (:mod:`.iq`) do.
"""

from __future__ import annotations

from component.features.notify.preferences import Preferences
from component.i18n import _, listing, n_
from component.routing.commands import Command, Context, Done, Next, Step, Target
from extensions.forms import Field, Form
from extensions.submitted_form import SubmittedForm
from storage.models import Channel


class NotificationSettings(Command):
    node = "notifications"
    name = _("Notification settings")
    target = Target.DOMAIN

    def __init__(self, preferences: Preferences) -> None:
        self.preferences = preferences

    async def start(self, ctx: Context) -> Step:
        current = await self.preferences.get(ctx.requester.bare)
        contact = current.contact
        status = [
            _("Emails go to {email}.", email=contact.email)
            if contact.email
            else _("No confirmed email address yet.")
        ]
        if contact.pending_email and contact.pending_email != contact.email:
            status.append(
                _("{email} waits for its confirmation code.", email=contact.pending_email)
            )
        return Next(
            "settings",
            Form(
                title=self.name,
                instructions=listing(
                    [
                        _(
                            "When you are offline and a company writes to you, orgchat first "
                            "notifies your devices (web push), then sends one email if the "
                            "message stays unread."
                        ),
                        *status,
                        n_(
                            "Push: {count} device registered.",
                            "Push: {count} devices registered.",
                            current.push_devices,
                        ),
                    ],
                    " ",
                ),
                fields=[
                    Field.text_single(
                        "email",
                        _("Email address"),
                        desc=_("A new address gets a confirmation code"),
                        default=contact.email or None,
                    ),
                    Field.boolean("email-on", _("Emails"), default=not contact.email_opt_out),
                    Field.boolean(
                        "push-on", _("Push notifications"), default=not contact.push_opt_out
                    ),
                    Field.text_single(
                        "quiet-hours",
                        _("Quiet hours"),
                        desc=_("No push and no email then, e.g. 22:00-07:00; empty: none"),
                        default=contact.quiet_hours,
                    ),
                    Field.text_single(
                        "timezone",
                        _("Your time zone"),
                        desc=_("e.g. Europe/Berlin"),
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
            form.text("quiet-hours", required=False, max_chars=20, label=_("Quiet hours")),
            form.text("timezone", required=False, max_chars=64, label=_("Your time zone")),
        )
        email = form.text("email", required=False, max_chars=254, label=_("Email address"))
        if email and email.strip().lower() != (current.email or "").lower():
            sent_to = await self.preferences.set_email(address, email, ctx.lang)
            return Done(
                note=_(
                    "Settings saved. A confirmation code was sent to {email}: enter it with "
                    "the command “{command}”.",
                    email=sent_to,
                    command=ConfirmEmail.name,
                )
            )
        return Done(note=_("Settings saved."))


class ConfirmEmail(Command):
    node = "confirm-email"
    name = _("Confirm email address")
    target = Target.DOMAIN

    def __init__(self, preferences: Preferences) -> None:
        self.preferences = preferences

    async def start(self, ctx: Context) -> Step:
        return Next(
            "code",
            Form(
                title=self.name,
                fields=[Field.text_single("code", _("Code from the email"), required=True)],
            ),
        )

    async def submit(self, ctx: Context, stage: str, form: SubmittedForm) -> Step:
        code = form.text("code", label=_("Code from the email"), max_chars=20)
        email = await self.preferences.confirm_email(ctx.requester.bare, code)
        return Done(note=_("Confirmed: notifications may now go to {email}.", email=email))


def notify_commands(preferences: Preferences) -> list[Command]:
    return [NotificationSettings(preferences), ConfirmEmail(preferences)]
