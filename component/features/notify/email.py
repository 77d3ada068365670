"""Notification emails: what one email says, how it is written, how it is sent.

:func:`render` writes one :class:`Notification` as an RFC 5322 message
(``multipart/alternative``: text/plain and text/html, RFC 2046), serialised with
``email.policy.SMTP`` so that non-ASCII names and subjects become RFC 2047
encoded words and lines end in CRLF. Headers:

* ``From``: the configured sender; ``To``: the recipient with their name;
  ``Reply-To``: the signed reply address (:mod:`component.features.notify.tokens`),
  named after the other side of the chat;
* ``Message-ID``: unique per email; ``In-Reply-To`` and ``References``: one
  id per conversation and recipient, ``<thread_key@domain>``, never sent as a
  message of its own, so that mail clients thread every email about one
  conversation together;
* ``Auto-Submitted: auto-generated`` (RFC 3834) and
  ``X-Auto-Response-Suppress: All`` (Microsoft) so that vacation responders
  stay silent; ``List-Unsubscribe: <mailto:...>`` (RFC 2369). These are
  transactional emails, not a mailing list: no ``Precedence: bulk`` and no
  ``List-Id`` (which would make clients file them with newsletters).

:class:`SmtpSender` hands a message to the relay with aiosmtplib (RFC 5321)
and sorts every failure into :class:`TemporaryFailure` (retry later) or
:class:`PermanentFailure` (do not retry), after the reply code class.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import html
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, parseaddr

import aiosmtplib

from component.config import SmtpSettings
from component.i18n import Text, _, language, n_, translate
from component.logs import get_logger
from storage.models import Party

__all__ = [
    "Excerpt",
    "Notification",
    "PermanentFailure",
    "SendFailure",
    "SmtpSender",
    "TemporaryFailure",
    "render",
    "subject",
]

log = get_logger(__name__)

_THREAD_KEY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._+=-]{0,200}[A-Za-z0-9])?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_MAX_NAME = 80


@dataclass(frozen=True)
class Excerpt:
    """One unseen chat message quoted in the email."""

    sender: str
    ts: dt.datetime  #: naive values are taken as UTC
    body: str


@dataclass(frozen=True)
class Notification:
    """What one email says."""

    to: str
    recipient_name: str | None
    #: COMPANY: mail to a company about its customer's messages;
    #: CUSTOMER: mail to a customer about a company's messages.
    party: Party
    company_name: str
    #: The other side as the recipient knows it: the customer's nickname or label
    #: for a company, the company's name for a customer.
    conversation_label: str
    excerpts: Sequence[Excerpt]
    chat_link: str
    reply_to: str
    unsubscribe: str | None
    #: Stable per conversation and recipient, e.g. ``conv-<token>-company``;
    #: the local part of the thread's message id (letters, digits, ``._+=-``).
    thread_key: str
    #: When the login ``chat_link`` carries stops working (a guest's link,
    #: :mod:`component.features.notify.links`); None: it carries none.
    link_expires: dt.datetime | None = None
    note: str | None = None  #: e.g. "No agent of Pizza Napoli is online."
    #: The recipient's language (an ``xml:lang`` tag); None: English.
    lang: str | None = None

    def tr(self, text: str) -> str:
        """``text`` in the recipient's language."""
        return translate(text, self.lang)


def _one_line(text: str, limit: int = _MAX_NAME) -> str:
    value = " ".join(_CONTROL.sub(" ", text).split())
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


def _when(ts: dt.datetime) -> str:
    aware = ts.replace(tzinfo=dt.UTC) if ts.tzinfo is None else ts.astimezone(dt.UTC)
    return aware.strftime("%Y-%m-%d %H:%M UTC")


def subject(n: Notification) -> str:
    """The Subject: line, with the number of messages when there are several."""
    count = len(n.excerpts)
    company = _one_line(n.company_name)
    if n.party is Party.COMPANY:
        who = _one_line(n.conversation_label)
        if count > 1:
            return n.tr(
                n_(
                    "{count} new message from {customer} at {company}",
                    "{count} new messages from {customer} at {company}",
                    count,
                    customer=who,
                    company=company,
                )
            )
        return n.tr(_("New message from {customer} at {company}", customer=who, company=company))
    if count > 1:
        return n.tr(
            n_(
                "{company} sent you {count} message",
                "{company} sent you {count} messages",
                count,
                company=company,
            )
        )
    return n.tr(_("{company} answered you", company=company))


def _intro(n: Notification) -> Text:
    label = _one_line(n.conversation_label)
    company = _one_line(n.company_name)
    several = len(n.excerpts) > 1
    if n.party is Party.COMPANY:
        if several:
            return _(
                "{customer} sent messages to {company} in the chat:",
                customer=label,
                company=company,
            )
        return _(
            "{customer} sent a message to {company} in the chat:", customer=label, company=company
        )
    if several:
        return _("{company} sent you messages in the chat:", company=company)
    return _("{company} sent you a message in the chat:", company=company)


def _why(n: Notification) -> Text:
    if n.party is Party.COMPANY:
        return _(
            "You get this email because a customer's messages to {company} were not read "
            "in the chat.",
            company=_one_line(n.company_name),
        )
    return _(
        "You get this email because you did not see the messages of {company} in the chat.",
        company=_one_line(n.company_name),
    )


def _login_note(expires: dt.datetime) -> Text:
    return _(
        "This link opens your chat in any browser without a password until {date}: "
        "do not forward this email.",
        date=_when(expires),
    )


_REPLY_LINE = _("Reply to this email to answer in the chat.")
_REPLY_HINT = _("Only the text above the quoted message is posted; attachments are not.")
_NO_TEXT = _("(no text)")


def _hello(n: Notification) -> str:
    name = _one_line(n.recipient_name) if n.recipient_name else ""
    return n.tr(_("Hello {name},", name=name) if name else _("Hello,"))


def _plain(n: Notification) -> str:
    out: list[str] = []
    out.append(_hello(n))
    out.append("")
    out.append(n.tr(_intro(n)))
    out.append("")
    if n.note:
        out.append(_one_line(n.tr(n.note), 300))
        out.append("")
    for excerpt in n.excerpts:
        out.append(f"{_one_line(excerpt.sender)}, {_when(excerpt.ts)}:")
        body = _text(excerpt)
        out.extend(body.split("\n") if body else [n.tr(_NO_TEXT)])
        out.append("")
    out.append(n.tr(_REPLY_LINE))
    out.append(n.tr(_REPLY_HINT))
    out.append(n.tr(_("Open the chat: {link}", link=n.chat_link)))
    if n.link_expires is not None:
        out.append(n.tr(_login_note(n.link_expires)))
    out.append("")
    out.append("-- ")
    out.append(n.tr(_why(n)))
    if n.unsubscribe:
        out.append(n.tr(_("To stop these emails: {link}", link=f"mailto:{n.unsubscribe}")))
    return "\n".join(out) + "\n"


def _text(excerpt: Excerpt) -> str:
    """The excerpt's lines; an action (XEP-0245, a body starting ``/me ``) written
    out as chat clients show it: ``* Anna closed this request.``"""
    body = excerpt.body.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    if body.startswith("/me "):
        return f"* {_one_line(excerpt.sender)} {body[4:]}"
    return body


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _html(n: Notification, title: str) -> str:
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{language(n.lang)}"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title></head>",
        '<body style="font-family: -apple-system, Segoe UI, Roboto, Helvetica, Arial, '
        'sans-serif; font-size: 15px; line-height: 1.45; color: #222;">',
        f"<p>{_e(_hello(n))}</p>",
        f"<p>{_e(n.tr(_intro(n)))}</p>",
    ]
    if n.note:
        parts.append(f'<p style="color: #8a4b00;">{_e(_one_line(n.tr(n.note), 300))}</p>')
    for excerpt in n.excerpts:
        body = _text(excerpt)
        shown = (
            "<br>\n".join(_e(line) for line in body.split("\n"))
            if body
            else f"<i>{_e(n.tr(_NO_TEXT))}</i>"
        )
        parts.append(
            '<div style="border-left: 3px solid #c9d3de; margin: 12px 0; padding: 2px 12px;">'
            f'<div style="color: #667; font-size: 13px;">{_e(_one_line(excerpt.sender))}'
            f" &middot; {_e(_when(excerpt.ts))}</div>"
            f"<div>{shown}</div></div>"
        )
    parts.append(f"<p><strong>{_e(n.tr(_REPLY_LINE))}</strong><br>{_e(n.tr(_REPLY_HINT))}</p>")
    link = f'<a href="{_e(n.chat_link)}">{_e(n.tr(_("Open the chat")))}</a>'
    if n.link_expires is not None:
        link += f"<br><small>{_e(n.tr(_login_note(n.link_expires)))}</small>"
    parts.append(f"<p>{link}</p>")
    footer = _e(n.tr(_why(n)))
    if n.unsubscribe:
        unsubscribe = n.tr(_("Unsubscribe"))
        footer += f' <a href="mailto:{_e(n.unsubscribe)}">{_e(unsubscribe)}</a>'
    parts.append(
        '<hr style="border: none; border-top: 1px solid #ddd;">'
        f'<p style="color: #777; font-size: 12px;">{footer}</p>'
    )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def thread_id(thread_key: str, domain: str) -> str:
    """``<thread_key@domain>``: the id every email of one thread refers to."""
    if not _THREAD_KEY.match(thread_key) or ".." in thread_key:
        raise ValueError(f"thread_key is not a valid message id part: {thread_key!r}")
    return f"<{thread_key}@{domain}>"


def render(
    n: Notification,
    *,
    sender: str,
    message_id_domain: str,
    now: dt.datetime | None = None,
) -> EmailMessage:
    """The email for ``n`` (see the module documentation); ``now`` sets Date: (tests)."""
    thread = thread_id(n.thread_key, message_id_domain)
    title = subject(n)
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = sender
    msg["To"] = Address(
        display_name=_one_line(n.recipient_name) if n.recipient_name else "", addr_spec=n.to
    )
    msg["Reply-To"] = Address(display_name=_one_line(n.conversation_label), addr_spec=n.reply_to)
    msg["Subject"] = title
    msg["Date"] = format_datetime(now or dt.datetime.now(dt.UTC))
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@{message_id_domain}>"  # short: never folded
    msg["In-Reply-To"] = thread
    msg["References"] = thread
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    if n.unsubscribe:
        msg["List-Unsubscribe"] = f"<mailto:{n.unsubscribe}>"
    plain, rich = _plain(n), _html(n, title)
    msg.set_content(plain, subtype="plain", charset="utf-8", cte=_cte(plain))
    msg.add_alternative(rich, subtype="html", charset="utf-8", cte=_cte(rich))
    for part in msg.iter_parts():
        del part["MIME-Version"]  # add_alternative() repeats it in the part
    return msg


def _cte(text: str) -> str:
    """quoted-printable for mostly ASCII text (readable), base64 for the rest (shorter)."""
    wide = sum(1 for c in text if ord(c) > 127)
    return "base64" if wide * 4 > len(text) else "quoted-printable"


# -- sending ---------------------------------------------------------------------


class SendFailure(Exception):
    """An email was not accepted by the relay; ``code`` is the SMTP reply code if any."""

    def __init__(self, text: str, code: int | None = None) -> None:
        super().__init__(f"{code} {text}" if code is not None else text)
        self.code = code
        self.text = text


class TemporaryFailure(SendFailure):
    """The relay is down, slow, or answered 4xx (or refused our own setup): retry later."""


class PermanentFailure(SendFailure):
    """The relay answered 5xx about this email (recipient refused, content refused)."""


def _by_code(code: int, text: str) -> SendFailure:
    return PermanentFailure(text, code) if 500 <= code < 600 else TemporaryFailure(text, code)


class SmtpSender:
    """Sends through the relay of :class:`SmtpSettings`, one connection per email.

    Failure mapping (RFC 5321 section 4.2.1 reply classes):

    * no connection, timeout, connection lost, TLS or protocol errors: temporary;
    * 4xx anywhere: temporary;
    * 5xx to RCPT or DATA (the recipient or the content is refused): permanent;
    * 5xx to EHLO, STARTTLS, AUTH or MAIL FROM: temporary, because it is about
      our own relay setup (credentials, sender address), the same for every
      email and fixed by an operator, not by giving up this email.
    """

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        address = parseaddr(settings.sender)[1]
        self._local_hostname = address.rpartition("@")[2] or "localhost"

    async def send(self, message: EmailMessage) -> None:
        sender = parseaddr(str(message.get("Sender") or message.get("From") or ""))[1]
        recipients = [
            addr
            for _name, addr in getaddresses(
                [str(v) for key in ("To", "Cc", "Bcc") for v in message.get_all(key, [])]
            )
            if addr
        ]
        if not sender or not recipients:
            raise PermanentFailure("the message has no sender or no recipient")
        s = self.settings
        try:
            errors, _reply = await aiosmtplib.send(
                message,
                sender=sender,
                recipients=recipients,
                hostname=s.host,
                port=s.port,
                username=s.username or None,
                password=s.password or None,
                start_tls=s.starttls,
                timeout=s.timeout,
                local_hostname=self._local_hostname,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients
            if refused and all(500 <= r.code < 600 for r in refused):
                first = refused[0]
                raise PermanentFailure(first.message, first.code) from exc
            temporary = next((r for r in refused if not 500 <= r.code < 600), None)
            if temporary is not None:
                raise TemporaryFailure(temporary.message, temporary.code) from exc
            raise TemporaryFailure(str(exc)) from exc
        except (aiosmtplib.SMTPDataError, aiosmtplib.SMTPRecipientRefused) as exc:
            raise _by_code(exc.code, exc.message) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise TemporaryFailure(exc.message, exc.code) from exc
        except aiosmtplib.SMTPException as exc:
            raise TemporaryFailure(str(exc) or type(exc).__name__) from exc
        except (OSError, TimeoutError) as exc:
            raise TemporaryFailure(str(exc) or type(exc).__name__) from exc
        # Some recipients refused, others accepted (never with the single recipient
        # of a notification): raising would make the caller send it again to those
        # who got it, so the refusals are only logged.
        for address, response in errors.items():
            log.warning(
                "email.recipient_refused", code=response.code, error=response.message, to=address
            )
