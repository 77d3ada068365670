# ruff: noqa: RUF001  (Cyrillic samples are intended)
"""The email side of the cascade over real SMTP on loopback: no mocks, no stack.

* :class:`SmtpSender` against a small aiosmtpd relay started here, scripted to
  answer 250, 4xx or 5xx at each stage, and against a closed port and a
  server that never greets: every outcome must map to delivered,
  TemporaryFailure or PermanentFailure with the server's code and text.
* :class:`InboundServer` on a free port, driven with aiosmtplib and smtplib as
  a sending MTA would: every reply code of its documentation.

Nothing here needs ejabberd, PostgreSQL, Redis or the SMTP sink of `make up`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email.policy
import smtplib
import socket
import time
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import aiosmtplib
import pytest
import pytest_asyncio
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from component.config import InboundSettings, SmtpSettings
from component.features.notify.email import (
    Excerpt,
    Notification,
    PermanentFailure,
    SmtpSender,
    TemporaryFailure,
    render,
)
from component.features.notify.inbound import InboundReply, InboundServer, same_address
from component.features.notify.tokens import Purpose, Tokens
from storage.models import Party

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

HOST = "127.0.0.1"
SENDER = "orgchat <noreply@biz.test>"
REPLY_DOMAIN = "reply.biz.test"
ANNA = "anna@example.org"
CONV = 4242


# -- a scripted relay for SmtpSender ----------------------------------------------


class Relay:
    """aiosmtpd handler answering from scripts; 250 once a script is empty."""

    def __init__(self) -> None:
        self.mail: list[str] = []
        self.rcpt: list[str] = []
        self.data: list[str] = []
        self.received: list[tuple[str, list[str], bytes]] = []
        self.logins: list[str] = []

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.mail.pop(0) if self.mail else "250 2.1.0 OK"
        if reply.startswith("250"):
            envelope.mail_from = address
            envelope.mail_options.extend(options)
        return reply

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.rcpt.pop(0) if self.rcpt else "250 2.1.5 OK"
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = self.data.pop(0) if self.data else "250 2.0.0 OK"
        if reply.startswith("250"):
            self.received.append(
                (
                    envelope.mail_from or "",
                    list(envelope.rcpt_tos),
                    envelope.original_content or b"",
                )
            )
        return reply


def _authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"right"
    return AuthResult(success=ok, handled=False)


@dataclasses.dataclass
class RelayServer:
    port: int
    relay: Relay


@pytest_asyncio.fixture(loop_scope="session")
async def relay() -> AsyncIterator[RelayServer]:
    loop = asyncio.get_running_loop()
    handler = Relay()
    server = await loop.create_server(
        lambda: SMTP(
            handler,
            hostname="relay.test",
            authenticator=_authenticator,
            auth_require_tls=False,
            loop=loop,
        ),
        HOST,
        0,
    )
    try:
        yield RelayServer(server.sockets[0].getsockname()[1], handler)
    finally:
        server.close()
        await server.wait_closed()


def settings(port: int, **changes: Any) -> SmtpSettings:
    return dataclasses.replace(
        SmtpSettings(host=HOST, port=port, timeout=5.0, sender=SENDER), **changes
    )


def notification() -> EmailMessage:
    n = Notification(
        to=ANNA,
        recipient_name="Анна",
        party=Party.CUSTOMER,
        company_name="Pizza Napoli",
        conversation_label="Pizza Napoli",
        excerpts=[Excerpt("Pizza Napoli", time_now(), "Large or small?")],
        chat_link="xmpp:pizza-napoli@biz.test?message",
        reply_to=f"reply+x@{REPLY_DOMAIN}",
        unsubscribe=f"unsubscribe+y@{REPLY_DOMAIN}",
        thread_key="conv-k3x7f2q7mz-customer",
    )
    return render(n, sender=SENDER, message_id_domain=REPLY_DOMAIN)


def time_now() -> Any:
    import datetime as dt

    return dt.datetime.now(dt.UTC)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


async def test_sender_delivers_then_maps_451_and_550(relay: RelayServer) -> None:
    sender = SmtpSender(settings(relay.port))
    relay.relay.data = [
        "250 2.0.0 Queued as 1A2B3C",
        "451 4.7.1 Greylisted, try again in 5 minutes",
        "550 5.7.1 Message rejected as spam",
    ]
    message = notification()
    await sender.send(message)
    mail_from, rcpt_tos, content = relay.relay.received[0]
    assert mail_from == "noreply@biz.test"
    assert rcpt_tos == [ANNA]
    parsed = BytesParser(policy=email.policy.default).parsebytes(content)
    assert parsed["Message-ID"] == message["Message-ID"]
    assert parsed["Subject"] == "Pizza Napoli answered you"
    assert parsed["To"] == "Анна <anna@example.org>"

    with pytest.raises(TemporaryFailure) as temporary:
        await sender.send(notification())
    assert temporary.value.code == 451
    assert "Greylisted" in temporary.value.text
    assert str(temporary.value).startswith("451 4.7.1 Greylisted")

    with pytest.raises(PermanentFailure) as permanent:
        await sender.send(notification())
    assert permanent.value.code == 550
    assert "rejected as spam" in permanent.value.text
    assert len(relay.relay.received) == 1


async def test_sender_maps_recipient_refusals(relay: RelayServer) -> None:
    sender = SmtpSender(settings(relay.port))
    relay.relay.rcpt = ["550 5.1.1 <anna@example.org>: Recipient address rejected"]
    with pytest.raises(PermanentFailure) as permanent:
        await sender.send(notification())
    assert permanent.value.code == 550
    assert "Recipient address rejected" in permanent.value.text

    relay.relay.rcpt = ["450 4.2.0 Mailbox temporarily unavailable"]
    with pytest.raises(TemporaryFailure) as temporary:
        await sender.send(notification())
    assert temporary.value.code == 450


async def test_sender_treats_relay_setup_refusals_as_temporary(relay: RelayServer) -> None:
    relay.relay.mail = ["553 5.7.1 Sender address rejected: not owned by user"]
    with pytest.raises(TemporaryFailure) as refused:
        await SmtpSender(settings(relay.port)).send(notification())
    assert refused.value.code == 553

    wrong = SmtpSender(settings(relay.port, username="orgchat", password="wrong"))
    with pytest.raises(TemporaryFailure) as auth:
        await wrong.send(notification())
    assert auth.value.code == 535

    right = SmtpSender(settings(relay.port, username="orgchat", password="right"))
    await right.send(notification())
    assert len(relay.relay.received) == 1


async def test_sender_closed_port_is_temporary() -> None:
    sender = SmtpSender(settings(free_port()))
    with pytest.raises(TemporaryFailure) as failure:
        await sender.send(notification())
    assert failure.value.code is None


async def test_sender_silent_server_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never greets
        writer.close()

    server = await asyncio.start_server(silent, HOST, 0)
    try:
        port = server.sockets[0].getsockname()[1]
        sender = SmtpSender(settings(port, timeout=0.5))
        started = time.monotonic()
        with pytest.raises(TemporaryFailure):
            await sender.send(notification())
        assert time.monotonic() - started < 5
    finally:
        server.close()
        await server.wait_closed()


# -- the inbound server ---------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclasses.dataclass
class Inbound:
    server: InboundServer
    tokens: Tokens
    clock: Clock
    expected: dict[tuple[int, Party], str]
    replies: list[InboundReply]
    unsubscribed: list[tuple[int, Party]]
    fail: list[Exception]

    @property
    def port(self) -> int:
        return self.server.port

    def address(self, purpose: Purpose = Purpose.REPLY, party: Party = Party.CUSTOMER) -> str:
        return self.tokens.address(self.tokens.make(CONV, party, purpose), REPLY_DOMAIN)


MAX_BYTES = 20_000
TTL = 3600.0


@pytest_asyncio.fixture(loop_scope="session")
async def inbound() -> AsyncIterator[Inbound]:
    clock = Clock()
    tokens = Tokens("inbound-test-secret", TTL, clock=clock)
    expected = {(CONV, Party.CUSTOMER): ANNA, (CONV, Party.COMPANY): "orders@pizza.example"}
    replies: list[InboundReply] = []
    unsubscribed: list[tuple[int, Party]] = []
    fail: list[Exception] = []

    async def expected_sender(conversation_id: int, party: Party) -> str | None:
        return expected.get((conversation_id, party))

    async def on_reply(reply: InboundReply) -> None:
        if fail:
            raise fail[0]
        replies.append(reply)

    async def on_unsubscribe(conversation_id: int, party: Party) -> None:
        if fail:
            raise fail[0]
        unsubscribed.append((conversation_id, party))

    server = InboundServer(
        InboundSettings(
            host=HOST,
            port=0,
            reply_domain=REPLY_DOMAIN,
            secret="inbound-test-secret",
            token_ttl=TTL,
            max_message_bytes=MAX_BYTES,
        ),
        tokens,
        expected_sender=expected_sender,
        on_reply=on_reply,
        on_unsubscribe=on_unsubscribe,
    )
    await server.start()
    try:
        yield Inbound(server, tokens, clock, expected, replies, unsubscribed, fail)
    finally:
        await server.stop()


async def deliver(port: int, mail_from: str, rcpt: str | list[str], data: bytes) -> tuple[int, str]:
    """One SMTP transaction as an MTA runs it; the first refusal or DATA's final reply."""
    client = aiosmtplib.SMTP(
        hostname=HOST, port=port, timeout=10, start_tls=False, local_hostname="mx.example.org"
    )
    await client.connect()
    try:
        await client.ehlo()
        reverse_path = b"<>" if mail_from == "<>" else b"<%s>" % mail_from.encode()
        response = await client.execute_command(b"MAIL", b"FROM:" + reverse_path)
        if response.code != 250:
            return response.code, response.message
        for address in [rcpt] if isinstance(rcpt, str) else rcpt:
            response = await client.execute_command(b"RCPT", b"TO:<%s>" % address.encode())
            if response.code not in (250, 251):
                return response.code, response.message
        try:
            response = await client.data(data)
        except aiosmtplib.SMTPResponseException as exc:
            return exc.code, exc.message
        return response.code, response.message
    finally:
        with contextlib.suppress(aiosmtplib.SMTPException):
            await client.quit()
        client.close()


QUOTE = (
    "On Fri, Nov 27, 2026 at 9:15 PM Pizza Napoli <{to}> wrote:\n\n"
    "> Hello Anna,\n>\n> Pizza Napoli sent you a message in the chat:\n"
    "> Large or small?\n>\n> Reply to this email to answer in the chat.\n"
)


def gmail_reply(to: str, sender: str = f"Anna <{ANNA}>", text: str = "Large, please!") -> bytes:
    """A Gmail-shaped reply: multipart/alternative, text and HTML, both quoting."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = sender
    msg["To"] = f"Pizza Napoli <{to}>"
    msg["Subject"] = "Re: Pizza Napoli answered you"
    msg["Message-ID"] = "<CAF=abc123@mail.gmail.com>"
    msg["In-Reply-To"] = "<conv-k3x7f2q7mz-customer.1@reply.biz.test>"
    msg.set_content(f"{text}\n\n" + QUOTE.format(to=to))
    msg.add_alternative(
        f'<div dir="ltr">{text}</div><br><div class="gmail_quote"><div class="gmail_attr">'
        f"On Fri, Nov 27, 2026 at 9:15 PM Pizza Napoli &lt;{to}&gt; wrote:<br></div>"
        '<blockquote class="gmail_quote">Hello Anna, Large or small?</blockquote></div>',
        subtype="html",
    )
    return msg.as_bytes()


async def test_good_reply_reaches_the_chat(inbound: Inbound) -> None:
    to = inbound.address()
    code, text = await deliver(inbound.port, ANNA, to, gmail_reply(to))
    assert (code, text) == (250, "2.0.0 Reply posted to the chat")
    assert inbound.replies == [
        InboundReply(
            conversation_id=CONV,
            party=Party.CUSTOMER,
            sender=ANNA,
            text="Large, please!",
            message_id="<CAF=abc123@mail.gmail.com>",
        )
    ]


async def test_html_only_reply_in_another_charset_via_smtplib(inbound: Inbound) -> None:
    to = inbound.address(party=Party.COMPANY)
    msg = EmailMessage()
    msg["From"] = "Pizza Napoli <Orders@PIZZA.example>"  # case differs from the expected one
    msg["To"] = to
    msg["Subject"] = "Re: New message from Anna at Pizza Napoli"
    msg.set_content(
        "<p>Да, до 23:00.</p><p>Марио</p>"
        '<div class="moz-cite-prefix">27.11.2026 21:15, Anna пишет:</div>'
        "<blockquote type='cite'>Вы доставляете?</blockquote>",
        subtype="html",
        charset="koi8-r",
        cte="base64",
    )
    assert b"koi8-r" in msg.as_bytes()

    def send() -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP(HOST, inbound.port, local_hostname="mx.pizza.example", timeout=10) as s:
            return s.sendmail("orders@pizza.example", [to], msg.as_bytes())

    refused = await asyncio.to_thread(send)
    assert refused == {}
    assert len(inbound.replies) == 1
    reply = inbound.replies[0]
    assert (reply.conversation_id, reply.party) == (CONV, Party.COMPANY)
    assert reply.text == "Да, до 23:00.\n\nМарио"
    assert reply.message_id is None


async def test_quoted_printable_flowed_reply(inbound: Inbound) -> None:
    to = inbound.address()
    body = (
        "Ich nehme die gro=C3=9Fe, bitte bis 20 Uhr liefern, wenn das noch =\r\n"
        "m=C3=B6glich ist. \r\n"
        "Danke!\r\n\r\n"
        "Von meinem iPhone gesendet\r\n\r\n"
        "> Am 27.11.2026 um 21:15 schrieb Pizza Napoli <x@y>:\r\n"
    )
    data = (
        f"From: {ANNA}\r\nTo: {to}\r\nSubject: Re: x\r\nMIME-Version: 1.0\r\n"
        'Content-Type: text/plain; charset="utf-8"; format=flowed\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n" + body
    ).encode()
    assert (await deliver(inbound.port, ANNA, to, data))[0] == 250
    assert inbound.replies[0].text == (
        "Ich nehme die große, bitte bis 20 Uhr liefern, wenn das noch möglich ist. Danke!"
    )


async def test_odd_bodies(inbound: Inbound) -> None:
    to = inbound.address()
    head = f"From: {ANNA}\r\nTo: {to}\r\nSubject: Re\r\nMIME-Version: 1.0\r\n"
    unknown_charset = (
        head + "Content-Type: text/plain; charset=x-unknown\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\nЖду ответа\r\n"
    ).encode()
    assert (await deliver(inbound.port, ANNA, to, unknown_charset))[0] == 250
    assert inbound.replies[-1].text == "Жду ответа"
    no_headers = (head + "\r\nPlain 7bit, no Content-Type\r\n").encode()
    assert (await deliver(inbound.port, ANNA, to, no_headers))[0] == 250
    assert inbound.replies[-1].text == "Plain 7bit, no Content-Type"
    forwarded = (
        head + 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nSee the attached order.\r\n"
        "--b\r\nContent-Type: message/rfc822\r\n\r\n"
        "From: x@y\r\nContent-Type: text/plain\r\n\r\nnot the reply\r\n"
        "--b--\r\n"
    ).encode()
    assert (await deliver(inbound.port, ANNA, to, forwarded))[0] == 250
    assert inbound.replies[-1].text == "See the attached order."
    attachment_only = (
        head + 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; "
        'filename="order.txt"\r\n\r\n4 tyres\r\n--b--\r\n'
    ).encode()
    code, text = await deliver(inbound.port, ANNA, to, attachment_only)
    assert (code, text[:5]) == (550, "5.6.0")
    assert len(inbound.replies) == 3


async def test_same_address() -> None:
    assert same_address("Anna@Example.ORG", "anna@example.org")
    assert same_address("<anna@example.org.>", "anna@example.org")
    assert same_address("anna@bücher.example", "anna@xn--bcher-kva.example")
    assert not same_address("anna@example.org", "anna@example.net")
    assert not same_address("", "")


async def test_wrong_sender_is_refused(inbound: Inbound) -> None:
    to = inbound.address()
    mallory = "mallory@example.net"
    cases = [
        (mallory, gmail_reply(to)),  # envelope sender
        (ANNA, gmail_reply(to, sender=f"Mallory <{mallory}>")),  # From: header
        (ANNA, gmail_reply(to, sender=f"Anna <{ANNA}>, Mallory <{mallory}>")),  # two From:
    ]
    for mail_from, data in cases:
        code, text = await deliver(inbound.port, mail_from, to, data)
        assert code == 550
        assert text.startswith("5.7.1 ")
    inbound.expected.clear()  # the conversation has no known address
    code, text = await deliver(inbound.port, ANNA, to, gmail_reply(to))
    assert (code, text[:5]) == (550, "5.7.1")
    assert inbound.replies == []


async def test_case_of_the_sender_does_not_matter(inbound: Inbound) -> None:
    to = inbound.address()
    code, _ = await deliver(inbound.port, "Anna@EXAMPLE.org", to, gmail_reply(to))
    assert code == 250


async def test_bad_recipients_are_refused(inbound: Inbound) -> None:
    good = inbound.address()
    local, _, _ = good.partition("@")
    other = Tokens("another secret", TTL).make(CONV, Party.CUSTOMER, Purpose.REPLY)
    flipped = local[:-1] + ("b" if local.endswith("a") else "a")
    cases = {
        f"reply+{other}@{REPLY_DOMAIN}": "forged (another secret)",
        f"{flipped}@{REPLY_DOMAIN}": "forged (tampered)",
        f"reply+hello@{REPLY_DOMAIN}": "malformed",
        f"postmaster@{REPLY_DOMAIN}": "not ours",
        f"{local}@example.com": "unknown domain",
        f"{local}@sub.{REPLY_DOMAIN}": "unknown domain",
    }
    for rcpt in cases:
        code, text = await deliver(inbound.port, ANNA, rcpt, gmail_reply(rcpt))
        assert code == 550, rcpt
        assert text.startswith("5.1.1 ") and "no such recipient" in text, rcpt
    assert inbound.replies == []


async def test_expired_reply_address(inbound: Inbound) -> None:
    to = inbound.address()
    inbound.clock.now += TTL + 1
    code, text = await deliver(inbound.port, ANNA, to, gmail_reply(to))
    assert code == 550
    assert text.startswith("5.1.1 ") and "expired" in text
    assert inbound.replies == []


async def test_failing_chat_asks_the_mta_to_retry(inbound: Inbound) -> None:
    to = inbound.address()
    inbound.fail.append(RuntimeError("database down"))
    code, text = await deliver(inbound.port, ANNA, to, gmail_reply(to))
    assert (code, text[:5]) == (451, "4.3.0")
    assert inbound.replies == []
    inbound.fail.clear()  # the MTA tries again later
    code, _ = await deliver(inbound.port, ANNA, to, gmail_reply(to))
    assert code == 250
    assert [r.text for r in inbound.replies] == ["Large, please!"]


async def test_unsubscribe_from_any_sender(inbound: Inbound) -> None:
    to = inbound.address(Purpose.UNSUBSCRIBE, Party.COMPANY)
    data = b"From: someone@else.example\r\nSubject: unsubscribe\r\n\r\n\r\n"
    assert await deliver(inbound.port, "someone@else.example", to, data) == (
        250,
        "2.0.0 Unsubscribed",
    )
    # a null sender too, and after the token's expiry: old emails keep working
    inbound.clock.now += TTL * 10
    assert (await deliver(inbound.port, "<>", to, data))[0] == 250
    assert inbound.unsubscribed == [(CONV, Party.COMPANY), (CONV, Party.COMPANY)]
    assert inbound.replies == []
    inbound.fail.append(RuntimeError("database down"))
    assert (await deliver(inbound.port, "x@y.example", to, data))[0] == 451


async def test_automatic_mail_is_ignored(inbound: Inbound) -> None:
    to = inbound.address()
    for header in (
        b"Auto-Submitted: auto-replied\r\n",
        b"Auto-Submitted: auto-generated; owner-email=anna@example.org\r\n",
        b"Precedence: bulk\r\n",
        b"X-Autoreply: yes\r\n",
    ):
        code, text = await deliver(inbound.port, ANNA, to, header + gmail_reply(to))
        assert (code, text[:5]) == (250, "2.0.0")
    # a bounce: null envelope sender
    assert (await deliver(inbound.port, "<>", to, gmail_reply(to)))[0] == 250
    assert inbound.replies == []
    # "Auto-Submitted: no" is a person
    code, _ = await deliver(inbound.port, ANNA, to, b"Auto-Submitted: no\r\n" + gmail_reply(to))
    assert code == 250
    assert len(inbound.replies) == 1


async def test_oversize_is_refused_with_552(inbound: Inbound) -> None:
    to = inbound.address()
    big = gmail_reply(to, text="x" * 70 + ("\n" + "y" * 70) * (MAX_BYTES // 70))
    assert len(big) > MAX_BYTES
    code, text = await deliver(inbound.port, ANNA, to, big)  # no SIZE=: refused after DATA
    assert code == 552
    assert text.startswith("5.3.4 ")

    def send() -> None:
        with smtplib.SMTP(HOST, inbound.port, local_hostname="mx.example.org", timeout=10) as s:
            s.sendmail(ANNA, [to], big)  # announces SIZE=, refused at MAIL

    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        await asyncio.to_thread(send)
    assert refused.value.smtp_code == 552
    assert inbound.replies == []


async def test_nothing_but_the_quote_is_refused(inbound: Inbound) -> None:
    to = inbound.address()
    code, text = await deliver(inbound.port, ANNA, to, gmail_reply(to, text=""))
    assert code == 550
    assert text.startswith("5.6.0 ") and "no reply text" in text.lower()


async def test_one_recipient_per_transaction(inbound: Inbound) -> None:
    first = inbound.address()
    second = inbound.address(party=Party.COMPANY)
    code, text = await deliver(inbound.port, ANNA, [first, second], gmail_reply(first))
    assert (code, text[:5]) == (452, "4.5.3")


async def test_stop_closes_the_port(inbound: Inbound) -> None:
    port = inbound.port
    client = aiosmtplib.SMTP(hostname=HOST, port=port, timeout=5, start_tls=False)
    await client.connect()  # an open session is closed by stop()
    await inbound.server.stop()
    with pytest.raises(aiosmtplib.SMTPException):
        await client.ehlo()
    with pytest.raises((OSError, aiosmtplib.SMTPException)):
        await deliver(port, ANNA, inbound.address(), gmail_reply(inbound.address()))
    client.close()


async def test_a_reply_with_too_many_parts_is_refused_before_it_is_parsed(
    inbound: Inbound,
) -> None:
    to = inbound.address()
    parts = "".join(f"--b\r\nContent-Type: text/plain\r\n\r\npart {n}\r\n" for n in range(150))
    bomb = (
        f"From: Anna <{ANNA}>\r\nTo: {to}\r\nSubject: Re: hi\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        f"{parts}--b--\r\n"
    ).encode()
    assert len(bomb) < MAX_BYTES
    code, text = await deliver(inbound.port, ANNA, to, bomb)
    assert code == 554 and "Too many MIME parts" in text
    assert inbound.replies == []


async def test_characters_xml_cannot_carry_are_left_out_of_the_reply(inbound: Inbound) -> None:
    to = inbound.address()
    code, _ = await deliver(inbound.port, ANNA, to, gmail_reply(to, text="Large\x00, please\x0b!"))
    assert code == 250
    assert [r.text for r in inbound.replies] == ["Large, please!"]
