"""How a customer wants to be reached off XMPP: email address, opt-outs, push subscriptions.

Used by the ad-hoc commands "Notification settings" and "Confirm email
address" (standard clients) and by the ``urn:orgchat:notify:0`` IQs (custom
clients, web widgets that register a push subscription).

An email address is used only once confirmed: setting one emails a six-digit
code to it, and only its hash (bound to the XMPP account) is stored. Confirming
needs that code, from the same account, before another address is asked for;
``CONFIRM_ATTEMPTS`` wrong guesses per hour and account are allowed (Redis).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import ipaddress
import re
import secrets
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid
from urllib.parse import urlsplit

from component.errors import BadRequest, NotAllowed, RateLimited, RoutingError
from component.features.notify.email import PermanentFailure, SmtpSender, TemporaryFailure
from component.hours import HoursError, check_quiet_hours, check_timezone
from component.i18n import _, n_, translate
from component.logs import get_logger
from storage.models import Channel, Contact, Limit
from storage.protocols import ContactStore, LimitStore

log = get_logger(__name__)

#: A deliberately simple check: one @, no spaces, a dot in the domain. The
#: confirmation code is the real test.
EMAIL_RE = re.compile(r"^[^@\s<>\"]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z0-9-]{2,63}$")
CODE_DIGITS = 6
CONFIRM_ATTEMPTS = 5
CONFIRM_WINDOW_S = 3600
#: Confirmation emails one account may ask for, and one address may receive,
#: per CODES_WINDOW_S: the form cannot be used to flood someone's mailbox.
CODES_PER_ACCOUNT = 3
CODES_PER_ADDRESS = 3
CODES_WINDOW_S = 86_400
#: Push subscriptions kept per customer (devices, browsers).
MAX_PUSH_DEVICES = 10


class MailUnavailable(RoutingError):
    """The confirmation email could not be sent right now."""

    etype = "wait"
    condition = "recipient-unavailable"


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    contact: Contact
    push_devices: int


class Preferences:
    def __init__(
        self,
        *,
        contacts: ContactStore,
        limits: LimitStore,
        smtp: SmtpSender,
        sender: str,
        service_name: str,
        allow_http_push: bool,
    ) -> None:
        self.contacts = contacts
        self.limits = limits
        self.smtp = smtp
        self.sender = sender
        self.service_name = service_name
        #: Development only: push endpoints over plain HTTP (a test push service).
        self.allow_http_push = allow_http_push

    async def get(self, address: str) -> Settings:
        contact = await self.contacts.get(address)
        devices = await self.contacts.push_subscriptions(address)
        return Settings(contact, len(devices))

    async def set_email(self, address: str, email: str, lang: str | None = None) -> str:
        """Send a confirmation code to ``email``, written in ``lang`` (the
        ``xml:lang`` of the request); returns the normalised address."""
        email = email.strip()
        if not EMAIL_RE.match(email):
            raise BadRequest(_("Not an email address: {email}", email=repr(email)))
        local, _at, domain = email.rpartition("@")
        email = f"{local}@{domain.lower()}"
        (mine,) = await self.limits.hit(
            Limit.CODES_REQUESTED, [address], CODES_PER_ACCOUNT, CODES_WINDOW_S
        )
        (theirs,) = await self.limits.hit(
            Limit.CODES_RECEIVED, [email.lower()], CODES_PER_ADDRESS, CODES_WINDOW_S
        )
        if not (mine and theirs):
            raise RateLimited(_("Too many confirmation emails; try again tomorrow"))
        code = "".join(secrets.choice("0123456789") for _digit in range(CODE_DIGITS))
        await self.contacts.request_email(address, email, code_hash(address, code), lang)
        message = EmailMessage(policy=SMTP)
        message["From"] = self.sender
        message["To"] = email
        message["Subject"] = translate(
            _("Your {service} confirmation code: {code}", service=self.service_name, code=code),
            lang,
        )
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2].strip(">"))
        message["Auto-Submitted"] = "auto-generated"
        body = _(
            "Someone (hopefully you) asked {service} to send notifications to this "
            "address.\n\nYour confirmation code: {code}\n\nEnter it with the command "
            "“{command}” in your chat app. If it was not you, ignore this email: nothing "
            "will be sent here.\n",
            service=self.service_name,
            code=code,
            command=_("Confirm email address"),
        )
        message.set_content(translate(body, lang))
        try:
            await self.smtp.send(message)
        except (TemporaryFailure, PermanentFailure) as exc:
            log.warning("preferences.code_not_sent", error=str(exc))
            raise MailUnavailable(
                _("The confirmation email could not be sent; try again later")
            ) from exc
        log.info("preferences.code_sent")
        return email

    async def confirm_email(self, address: str, code: str) -> str:
        (allowed,) = await self.limits.hit(
            Limit.EMAIL_CONFIRMATIONS, [address], CONFIRM_ATTEMPTS, CONFIRM_WINDOW_S
        )
        if not allowed:
            raise RateLimited(_("Too many attempts; try again in an hour"))
        confirmed = await self.contacts.confirm_email(address, code_hash(address, code.strip()))
        if confirmed is None:
            raise NotAllowed(_("Wrong or outdated confirmation code"))
        log.info("preferences.email_confirmed")
        return confirmed

    async def set_opt_out(self, address: str, channel: Channel, opted_out: bool) -> None:
        await self.contacts.set_opt_out(address, channel, opted_out)

    async def set_quiet_hours(self, address: str, spec: str | None, timezone: str | None) -> None:
        """``"22:00-07:00"`` in an IANA zone (UTC if none); None or "" clears them."""
        if not spec:
            await self.contacts.set_quiet_hours(address, None, None)
            return
        try:
            check_quiet_hours(spec)
        except HoursError as exc:
            raise BadRequest(_("Quiet hours: {error}", error=str(exc))) from None
        try:
            check_timezone(timezone or "UTC")
        except HoursError as exc:
            raise BadRequest(_("Time zone: {error}", error=str(exc))) from None
        await self.contacts.set_quiet_hours(address, spec.strip(), timezone or "UTC")

    async def add_push(self, address: str, endpoint: str, p256dh: str, auth: str) -> int:
        """Register a Web Push subscription (RFC 8030; keys of RFC 8291)."""
        url = urlsplit(endpoint)
        if url.scheme != "https" and not (self.allow_http_push and url.scheme == "http"):
            raise BadRequest("The push endpoint must be an https URL")
        if not url.hostname:
            raise BadRequest("The push endpoint has no host")
        if len(_b64(p256dh, "p256dh")) != 65:
            raise BadRequest("p256dh must be an uncompressed P-256 public key (65 bytes)")
        if len(_b64(auth, "auth")) != 16:
            raise BadRequest("auth must be a 16-byte secret")
        if not self.allow_http_push and _internal_host(url.hostname):
            raise BadRequest("The push endpoint must be a public push service")
        known = await self.contacts.push_subscriptions(address)
        if len(known) >= MAX_PUSH_DEVICES and endpoint not in {s.endpoint for s in known}:
            raise RateLimited(
                n_(
                    "At most {count} device receives notifications; remove one first",
                    "At most {count} devices receive notifications; remove one first",
                    MAX_PUSH_DEVICES,
                )
            )
        return await self.contacts.add_push(address, endpoint, p256dh, auth)

    async def remove_push(self, address: str, endpoint: str) -> None:
        """Forget this customer's subscription with that endpoint; one they do not
        have is no error (a device turned off twice, or already gone)."""
        for sub in await self.contacts.push_subscriptions(address):
            if sub.endpoint == endpoint:
                await self.contacts.remove_push(sub.id)


def _internal_host(host: str) -> bool:
    """Loopback, private, link-local or reserved addresses, and local names: no push
    service lives there, and the component must not be made to call them."""
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not ip.is_global


def code_hash(address: str, code: str) -> str:
    """Stored instead of the code; bound to the account that asked for it."""
    return hashlib.sha256(f"{address}\x00{code}".encode()).hexdigest()


def _b64(value: str, name: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise BadRequest(f"{name} is not base64url") from None
