"""Replies by email: an SMTP server (aiosmtpd) on the component's own event loop.

The MX of ``inbound.reply_domain`` (or a relay in front, e.g. Postfix with a
transport to this port) delivers here the replies to notification emails
(``reply+TOKEN@reply-domain``) and the RFC 2369 ``mailto:`` unsubscriptions
(``unsubscribe+TOKEN@reply-domain``); see :mod:`component.features.notify.tokens`. The
server speaks SMTP (RFC 5321) without TLS or AUTH: it is meant for loopback or
a private network behind the MX. It runs ``aiosmtpd.smtp.SMTP`` protocols from
``loop.create_server`` (not aiosmtpd's thread-based ``Controller``), so the
callbacks run on the component's loop.

Replies (RFC 5321 reply codes, with RFC 3463 enhanced status codes in the text;
ENHANCEDSTATUSCODES is not advertised, since aiosmtpd's own replies lack them):

* RCPT to another domain, or with a malformed or forged token:
  ``550 5.1.1`` no such recipient;
* RCPT to an expired reply address: ``550 5.1.1``, saying that it expired;
* a second RCPT in one transaction: ``452 4.5.3`` (the MTA sends it later);
* a message larger than ``inbound.max_message_bytes``: ``552 5.3.4``, at MAIL
  when the client announces SIZE=, else after DATA;
* envelope sender or ``From:`` not the address we mailed: ``550 5.7.1``;
* no text left once quotes and signatures are removed: ``550 5.6.0``;
* ``expected_sender``, ``on_reply`` or ``on_unsubscribe`` raising:
  ``451 4.3.0``, so that the sending MTA keeps the mail and tries again;
* posted, unsubscribed, or ignored (loop protection): ``250 2.0.0``.

Sender check: the envelope sender (MAIL FROM) and the single address of the
``From:`` header must both equal ``expected_sender(conversation, party)``, the
address the notification went to, compared as bare addresses and
case-insensitively as a whole: the domain is case-insensitive by definition
(RFC 5321 section 2.4), and although a local part may be case-sensitive,
practically no mailbox provider treats it so, while users type their address
in either case. The signed token is the authorisation; this check stops a
reply address that travelled (a forwarded email) from being used by somebody
else. Forwarding services that rewrite the envelope sender (SRS) are refused.
Sender addresses are not authenticated here: the MX in front is expected to
enforce SPF/DKIM/DMARC (RFC 7208, 6376, 7489) before relaying.

Loop protection (replies only; RFC 3834 section 2): a message with a null
envelope sender (a bounce, ``MAIL FROM:<>``), with ``Auto-Submitted:`` other
than ``no``, with ``Precedence: bulk``, ``junk`` or ``list``, or with an
``X-Autoreply`` / ``X-Autorespond`` header is answered 250 and dropped: an
automatic message never reaches the chat, and answering it with an error
could start a mail loop.

Unsubscribe addresses accept any sender, null included (RFC 2369 ``mailto:``
semantics: the mail itself is the request, its content is ignored), and stay
valid after the token's expiry: an unsubscribe link in an old email must keep
working, and an expired token is still authentic.

Retries: when the MTA did not see our 250 (connection lost after ``on_reply``)
it delivers the same message again; :attr:`InboundReply.message_id` lets the
consumer recognise it.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import logging
import re
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses
from typing import Any, AnyStr

from aiosmtpd.smtp import SMTP, Envelope, Session

from component.config import InboundSettings
from component.features.notify.quotes import html_to_text, strip_reply, unflow
from component.features.notify.tokens import Purpose, TokenClaims, TokenError, Tokens
from component.logs import get_logger
from extensions.xml import xml_safe
from storage.models import Party

__all__ = ["InboundReply", "InboundServer", "extract_text", "same_address"]

log = get_logger(__name__)

OK_POSTED = "250 2.0.0 Reply posted to the chat"
OK_UNSUBSCRIBED = "250 2.0.0 Unsubscribed"
OK_IGNORED = "250 2.0.0 Automatic message accepted and ignored"
NO_SUCH_USER = "550 5.1.1 {address}: no such recipient"
EXPIRED = "550 5.1.1 {address}: this reply address has expired; please answer in the chat"
ONE_RECIPIENT = "452 4.5.3 One recipient per message; send to the others separately"
WRONG_SENDER = "550 5.7.1 This reply address belongs to another sender"
NO_TEXT = "550 5.6.0 No reply text found above the quoted message"
UNPARSABLE = "550 5.6.0 The message could not be parsed"
TOO_MANY_PARTS = "554 5.6.0 Too many MIME parts in one reply (at most {limit})"
TRY_LATER = "451 4.3.0 Temporary failure, please try again later"
TOO_BIG = "552 5.3.4 Message too big (at most {limit} bytes)"

_AUTO_PRECEDENCE = frozenset({"bulk", "junk", "list"})
#: Most MIME parts of a reply parsed (counted on the raw bytes, before parsing):
#: a reply is a text and an HTML alternative, perhaps a few attachments.
MAX_PARTS = 100
#: Most characters of a reply's text searched for its quote and signature: the
#: new text comes first; a quote beyond this is left out, not searched.
MAX_TEXT_SCANNED = 100_000
_PART_HEADER = re.compile(rb"^content-type:", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class InboundReply:
    """A reply by email, ready for the chat."""

    conversation_id: int
    party: Party  #: who replied: the party the notification went to
    sender: str  #: the bare address it came from (== the expected sender)
    text: str  #: only the new text: quotes and signatures removed
    message_id: str | None  #: the email's Message-ID, ``<...>``, if it had one


def _norm_address(address: str) -> str:
    value = address.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    local, at, domain = value.rpartition("@")
    if not at:
        return value.casefold()
    domain = domain.rstrip(".").lower()
    with contextlib.suppress(UnicodeError):
        domain = domain.encode("idna").decode("ascii")
    return f"{local.casefold()}@{domain}"


def same_address(a: str, b: str) -> bool:
    """Bare addresses compared as the module documentation says."""
    return bool(a.strip()) and _norm_address(a) == _norm_address(b)


def _part_text(part: Message) -> str:
    try:
        content = part.get_content() if isinstance(part, EmailMessage) else None
    except (LookupError, UnicodeError, ValueError, AssertionError):
        content = None  # an unknown charset or a broken transfer encoding
    if not isinstance(content, str):
        raw = part.get_payload(decode=True)
        content = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else ""
    if part.get_content_type() == "text/plain":
        fmt = str(part.get_param("format", "") or "").lower()
        if fmt == "flowed":
            delsp = str(part.get_param("delsp", "") or "").lower() == "yes"
            content = unflow(content, delsp=delsp)
    return content


def _find_parts(part: Message, found: dict[str, Message]) -> None:
    if part.get_content_disposition() == "attachment":
        return
    ctype = part.get_content_type()
    if part.is_multipart():
        if part.get_content_maintype() == "message":
            return  # an attached (forwarded) message is not the reply
        for sub in part.get_payload():
            if isinstance(sub, Message):
                _find_parts(sub, found)
        return
    if ctype in ("text/plain", "text/html"):
        found.setdefault(ctype, part)


def extract_text(message: Message) -> str:
    """The reply's text: the first text/plain part, else the first text/html part as
    text, charsets and transfer encodings decoded, RFC 3676 flowed text unwrapped;
    quotes and signatures removed (:func:`~component.features.notify.quotes.strip_reply`)."""
    found: dict[str, Message] = {}
    _find_parts(message, found)
    if "text/plain" in found:
        text = _part_text(found["text/plain"])
    elif "text/html" in found:
        text = html_to_text(_part_text(found["text/html"])[: MAX_TEXT_SCANNED * 4])
    else:
        return ""
    return xml_safe(strip_reply(text[:MAX_TEXT_SCANNED]))


def _reply_text(raw: bytes) -> str:
    """The new text of a raw reply (for a worker thread: parsing costs CPU)."""
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    return extract_text(message)


def _automatic(envelope_sender: str, message: Message) -> str | None:
    """Why the message is automatic (loop protection), or None."""
    if envelope_sender in ("", "<>"):
        return "null sender"
    auto = str(message.get("Auto-Submitted", "") or "").split(";", 1)[0].strip().lower()
    if auto and auto != "no":
        return f"auto-submitted {auto}"
    precedence = str(message.get("Precedence", "") or "").strip().lower()
    if precedence in _AUTO_PRECEDENCE:
        return f"precedence {precedence}"
    if message.get("X-Autoreply") is not None or message.get("X-Autorespond") is not None:
        return "autoreply header"
    return None


class _SMTP(SMTP):
    """aiosmtpd's protocol with an RFC 3463 enhanced code in its 552 replies."""

    def __init__(self, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._too_big = TOO_BIG.format(limit=kwargs.get("data_size_limit"))

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str) and status.startswith("552 Error:"):
            await super().push(self._too_big)
            return
        await super().push(status)


class InboundServer:
    """The inbound SMTP server; see the module documentation for its behaviour."""

    def __init__(
        self,
        settings: InboundSettings,
        tokens: Tokens,
        expected_sender: Callable[[int, Party], Awaitable[str | None]],
        on_reply: Callable[[InboundReply], Awaitable[None]],
        on_unsubscribe: Callable[[int, Party], Awaitable[None]],
    ) -> None:
        self.settings = settings
        self.tokens = tokens
        self.expected_sender = expected_sender
        self.on_reply = on_reply
        self.on_unsubscribe = on_unsubscribe
        self._server: asyncio.Server | None = None
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

    @property
    def port(self) -> int:
        """The port listened on (useful with ``port = 0``)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the inbound SMTP server is not running")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        if self._server is not None:
            return
        # aiosmtpd logs every command (with addresses) at INFO on "mail.log"; our own
        # events say what matters.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        loop = asyncio.get_running_loop()
        handler = _Handler(self)

        def factory() -> SMTP:
            smtp = _SMTP(
                handler,
                # An explicit name: the default resolves the host's FQDN (slow without DNS).
                hostname=self.settings.reply_domain,
                ident="orgchat",
                data_size_limit=self.settings.max_message_bytes,
                enable_SMTPUTF8=True,
                decode_data=False,
                timeout=300,
                loop=loop,
            )
            self._sessions.add(smtp)
            return smtp

        # reuse_port: several component processes on one host share the port
        # (the kernel spreads connections); one that dies leaves the others.
        self._server = await loop.create_server(
            factory, self.settings.host, self.settings.port, reuse_address=True, reuse_port=True
        )
        log.info("inbound.started", host=self.settings.host, port=self.port)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for smtp in list(self._sessions):
            transport = smtp.transport
            if transport is not None:
                transport.close()
        await server.wait_closed()
        await asyncio.sleep(0)  # let the closed sessions' tasks see the cancellation
        log.info("inbound.stopped")

    # -- the SMTP transaction ----------------------------------------------------

    def claims(self, address: str) -> TokenClaims | str:
        """The claims of a recipient address, or the SMTP reply refusing it."""
        shown = f"<{address}>"
        domain = self.settings.reply_domain
        try:
            return self.tokens.parse_address(address, domain)
        except TokenError as exc:
            if exc.reason != TokenError.EXPIRED:
                return NO_SUCH_USER.format(address=shown)
        # Authentic but expired: unsubscribe addresses keep working.
        claims = self.tokens.parse_address(address, domain, allow_expired=True)
        if claims.purpose is Purpose.UNSUBSCRIBE:
            return claims
        return EXPIRED.format(address=shown)

    async def rcpt(self, envelope: Envelope, address: str) -> str:
        if envelope.rcpt_tos:
            return ONE_RECIPIENT
        found = self.claims(address)
        if isinstance(found, str):
            log.info("inbound.rcpt_refused", reply=found[:3])
            return found
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def data(self, envelope: Envelope) -> str:
        found = self.claims(envelope.rcpt_tos[0])
        if isinstance(found, str):
            return found
        claims = found
        raw = envelope.original_content or b""
        if len(_PART_HEADER.findall(raw)) > MAX_PARTS + 1:
            log.info("inbound.too_many_parts", conversation=claims.conversation_id)
            return TOO_MANY_PARTS.format(limit=MAX_PARTS)
        try:
            # Headers first (cheap): the whole message is parsed only for a
            # sender who may write here, and then in a worker thread.
            message = BytesParser(policy=email.policy.default).parsebytes(raw, headersonly=True)
        except Exception:
            log.warning("inbound.unparsable", conversation=claims.conversation_id)
            return UNPARSABLE
        if claims.purpose is Purpose.UNSUBSCRIBE:
            return await self._unsubscribe(claims)
        mail_from = envelope.mail_from or ""
        reason = _automatic(mail_from, message)
        if reason is not None:
            log.info(
                "inbound.ignored",
                conversation=claims.conversation_id,
                party=claims.party.value,
                reason=reason,
            )
            return OK_IGNORED
        try:
            expected = await self.expected_sender(claims.conversation_id, claims.party)
        except Exception:
            log.exception("inbound.expected_sender_failed", conversation=claims.conversation_id)
            return TRY_LATER
        from_values = [str(v) for v in message.get_all("From", [])]
        from_addresses = [addr for _, addr in getaddresses(from_values) if addr]
        if (
            expected is None
            or len(from_addresses) != 1
            or not same_address(mail_from, expected)
            or not same_address(from_addresses[0], expected)
        ):
            log.info(
                "inbound.wrong_sender",
                conversation=claims.conversation_id,
                party=claims.party.value,
                known=expected is not None,
            )
            return WRONG_SENDER
        try:
            text = await asyncio.to_thread(_reply_text, raw)
        except Exception:
            log.exception("inbound.unreadable", conversation=claims.conversation_id)
            return UNPARSABLE
        if not text:
            log.info("inbound.no_text", conversation=claims.conversation_id)
            return NO_TEXT
        message_id = str(message.get("Message-ID", "") or "").strip() or None
        reply = InboundReply(
            conversation_id=claims.conversation_id,
            party=claims.party,
            sender=from_addresses[0],
            text=text,
            message_id=message_id,
        )
        try:
            await self.on_reply(reply)
        except Exception:
            log.exception("inbound.reply_failed", conversation=claims.conversation_id)
            return TRY_LATER
        log.info(
            "inbound.reply_posted",
            conversation=claims.conversation_id,
            party=claims.party.value,
            chars=len(text),
        )
        return OK_POSTED

    async def _unsubscribe(self, claims: TokenClaims) -> str:
        try:
            await self.on_unsubscribe(claims.conversation_id, claims.party)
        except Exception:
            log.exception("inbound.unsubscribe_failed", conversation=claims.conversation_id)
            return TRY_LATER
        log.info(
            "inbound.unsubscribed", conversation=claims.conversation_id, party=claims.party.value
        )
        return OK_UNSUBSCRIBED


class _Handler:
    """The aiosmtpd handler: hooks named after the SMTP commands."""

    def __init__(self, server: InboundServer) -> None:
        self.server = server

    async def handle_RCPT(
        self,
        smtp: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        return await self.server.rcpt(envelope, address)

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        return await self.server.data(envelope)
