"""component.features.notify.email.render: headers, threading, escaping, RFC 2047, MIME structure.

Every check runs on the bytes as they would go over SMTP, parsed back with the
standard library's parser, as a mail client would see them.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import re
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr, parsedate_to_datetime

import pytest

from component.features.notify.email import Excerpt, Notification, render, thread_id
from component.features.notify.quotes import html_to_text
from storage.models import Party

SENDER = "orgchat <noreply@biz.localhost>"
DOMAIN = "reply.biz.localhost"
TS = dt.datetime(2026, 11, 27, 21, 15, 42, tzinfo=dt.UTC)


def company_mail(**changes: object) -> Notification:
    base = Notification(
        to="orders@pizza.example",
        recipient_name="Pizza Napoli",
        party=Party.COMPANY,
        company_name="Pizza Napoli",
        conversation_label="Anna",
        excerpts=[Excerpt("Anna", TS, "Do you deliver to Akademgorodok?")],
        chat_link="xmpp:pizza-napoli+k3x7f2q7mz@biz.localhost?message",
        reply_to=f"reply+aaaa@{DOMAIN}",
        unsubscribe=f"unsubscribe+bbbb@{DOMAIN}",
        thread_key="conv-k3x7f2q7mz-company",
        note="No agent of Pizza Napoli is online.",
    )
    return _replace(base, **changes)


def customer_mail(**changes: object) -> Notification:
    base = Notification(
        to="anna@example.org",
        recipient_name="Anna",
        party=Party.CUSTOMER,
        company_name="Pizza Napoli",
        conversation_label="Pizza Napoli",
        excerpts=[Excerpt("Pizza Napoli", TS, "Yes, until 23:00.")],
        chat_link="xmpp:pizza-napoli@biz.localhost?message",
        reply_to=f"reply+cccc@{DOMAIN}",
        unsubscribe=f"unsubscribe+dddd@{DOMAIN}",
        thread_key="conv-k3x7f2q7mz-customer",
    )
    return _replace(base, **changes)


def _replace(n: Notification, **changes: object) -> Notification:
    import dataclasses

    return dataclasses.replace(n, **changes)  # type: ignore[arg-type]


def wire(n: Notification, **kwargs: object) -> bytes:
    msg = render(n, sender=SENDER, message_id_domain=DOMAIN, **kwargs)  # type: ignore[arg-type]
    return msg.as_bytes()


def parse(data: bytes) -> EmailMessage:
    parsed = BytesParser(policy=email.policy.default).parsebytes(data)
    assert isinstance(parsed, EmailMessage)
    return parsed


def bodies(msg: EmailMessage) -> tuple[str, str]:
    plain = msg.get_body(("plain",))
    rich = msg.get_body(("html",))
    assert isinstance(plain, EmailMessage) and isinstance(rich, EmailMessage)
    # decoded from the wire, bodies keep its CRLF line ends
    return (
        plain.get_content().replace("\r\n", "\n"),
        rich.get_content().replace("\r\n", "\n"),
    )


def test_headers_of_a_company_mail() -> None:
    data = wire(company_mail(), now=TS)
    msg = parse(data)
    assert msg["From"] == SENDER
    assert parseaddr(msg["To"]) == ("Pizza Napoli", "orders@pizza.example")
    assert parseaddr(msg["Reply-To"]) == ("Anna", f"reply+aaaa@{DOMAIN}")
    assert msg["Subject"] == "New message from Anna at Pizza Napoli"
    assert parsedate_to_datetime(msg["Date"]) == TS.replace(second=42)
    assert msg["In-Reply-To"] == f"<conv-k3x7f2q7mz-company@{DOMAIN}>"
    assert msg["References"] == f"<conv-k3x7f2q7mz-company@{DOMAIN}>"
    assert re.fullmatch(rf"<[0-9a-f]{{32}}@{re.escape(DOMAIN)}>", msg["Message-ID"])
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["List-Unsubscribe"] == f"<mailto:unsubscribe+bbbb@{DOMAIN}>"
    assert msg["MIME-Version"] == "1.0"
    assert "Precedence" not in msg
    assert "List-Id" not in msg
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert all(p["MIME-Version"] is None for p in msg.iter_parts())
    assert not msg.defects
    # RFC 5322: CRLF line ends, no line longer than 998 octets
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in data.split(b"\r\n")) <= 998


def test_subjects() -> None:
    two = [Excerpt("Anna", TS, "one"), Excerpt("Anna", TS, "two")]
    assert parse(wire(company_mail(excerpts=two)))["Subject"] == (
        "2 new messages from Anna at Pizza Napoli"
    )
    assert parse(wire(customer_mail()))["Subject"] == "Pizza Napoli answered you"
    three = [Excerpt("Pizza Napoli", TS, str(i)) for i in range(3)]
    assert (
        parse(wire(customer_mail(excerpts=three)))["Subject"] == "Pizza Napoli sent you 3 messages"
    )


def test_threading_ids() -> None:
    first = parse(wire(customer_mail()))
    second = parse(wire(customer_mail(excerpts=[Excerpt("Pizza Napoli", TS, "later")])))
    other = parse(wire(company_mail()))
    assert first["References"] == second["References"] == first["In-Reply-To"]
    assert first["Message-ID"] != second["Message-ID"]
    assert other["References"] != first["References"]
    ids = {parse(wire(customer_mail()))["Message-ID"] for _ in range(50)}
    assert len(ids) == 50
    with pytest.raises(ValueError):
        thread_id("bad key", DOMAIN)
    with pytest.raises(ValueError):
        thread_id("a..b", DOMAIN)
    with pytest.raises(ValueError):
        render(customer_mail(thread_key="<x>"), sender=SENDER, message_id_domain=DOMAIN)


def test_bodies() -> None:
    plain, rich = bodies(parse(wire(company_mail())))
    for text in (plain, html_to_text(rich)):
        assert "Hello Pizza Napoli," in text
        assert "No agent of Pizza Napoli is online." in text
        assert "Anna, 2026-11-27 21:15 UTC" in text or "Anna · 2026-11-27 21:15 UTC" in text
        assert "Do you deliver to Akademgorodok?" in text
        assert "Reply to this email to answer in the chat." in text
    assert "Open the chat: xmpp:pizza-napoli+k3x7f2q7mz@biz.localhost?message" in plain
    assert 'href="xmpp:pizza-napoli+k3x7f2q7mz@biz.localhost?message"' in rich
    assert f"mailto:unsubscribe+bbbb@{DOMAIN}" in plain
    assert f'href="mailto:unsubscribe+bbbb@{DOMAIN}"' in rich
    # the footer sits under a signature delimiter, so replies quoting it drop it
    assert "\n-- \n" in plain


def test_an_action_reads_as_clients_show_it() -> None:
    # A request's closing notice is the customer's action (/me ...).
    mail = company_mail(excerpts=[Excerpt("Anna", TS, "/me closed this request.")])
    plain, rich = bodies(parse(wire(mail)))
    for text in (plain, html_to_text(rich)):
        assert "* Anna closed this request." in text
        assert "/me" not in text


def test_times_in_utc() -> None:
    novosibirsk = dt.timezone(dt.timedelta(hours=7))
    local = dt.datetime(2026, 11, 28, 4, 15, tzinfo=novosibirsk)
    naive = dt.datetime(2026, 11, 27, 21, 16)
    n = customer_mail(
        excerpts=[Excerpt("Pizza Napoli", local, "a"), Excerpt("Pizza Napoli", naive, "b")]
    )
    plain, _ = bodies(parse(wire(n)))
    assert "Pizza Napoli, 2026-11-27 21:15 UTC:" in plain
    assert "Pizza Napoli, 2026-11-27 21:16 UTC:" in plain


def test_user_text_is_escaped_in_html() -> None:
    evil = "<script>alert('x')</script> & <b>bold</b>"
    n = company_mail(
        conversation_label='Anna "<img src=x onerror=alert(1)>"',
        recipient_name="<i>Pizza</i>",
        excerpts=[Excerpt("<b>Anna</b>", TS, evil + "\nsecond line")],
        note="<u>note</u>",
    )
    plain, rich = bodies(parse(wire(n)))
    assert "<script>" not in rich
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in rich
    assert "<img" not in rich and "<b>Anna" not in rich and "<i>Pizza" not in rich
    assert "<u>" not in rich
    assert "second line" in rich
    # the plain text shows the text as written
    assert evil in plain
    assert html_to_text(rich).count("alert") == 2  # the body and the label, as text


def test_non_ascii_names_and_subject() -> None:
    n = customer_mail(
        recipient_name="Анна Петрова",
        company_name="Пицца «Наполи»",
        conversation_label="Пицца «Наполи»",
        excerpts=[Excerpt("Пицца «Наполи»", TS, "Да, доставляем до 23:00 ✓")],
    )
    data = wire(n)
    head = data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()  # RFC 2047 encoded words, no raw UTF-8 in headers
    assert b"=?utf-8?" in head
    msg = parse(data)
    assert msg["Subject"] == "Пицца «Наполи» answered you"
    assert parseaddr(msg["To"]) == ("Анна Петрова", "anna@example.org")
    assert parseaddr(msg["Reply-To"])[0] == "Пицца «Наполи»"
    plain, rich = bodies(msg)
    assert "Да, доставляем до 23:00 ✓" in plain
    assert "Да, доставляем до 23:00 ✓" in rich
    assert data.isascii()  # bodies are transfer-encoded too


def test_header_injection_is_neutralised() -> None:
    n = company_mail(conversation_label="Anna\r\nBcc: victim@example.org", recipient_name="X\nY")
    msg = parse(wire(n))
    assert "Bcc" not in msg
    assert msg["Subject"] == "New message from Anna Bcc: victim@example.org at Pizza Napoli"


def test_optional_parts() -> None:
    n = customer_mail(recipient_name=None, unsubscribe=None, note=None)
    msg = parse(wire(n))
    assert "List-Unsubscribe" not in msg
    assert parseaddr(msg["To"]) == ("", "anna@example.org")
    plain, _ = bodies(msg)
    assert plain.startswith("Hello,\n")
    assert "mailto:" not in plain


def test_long_lines_and_empty_bodies() -> None:
    long = "x" * 5000
    msg = parse(wire(customer_mail(excerpts=[Excerpt("P", TS, long), Excerpt("P", TS, "")])))
    plain, _ = bodies(msg)
    assert long in plain
    assert "(no text)" in plain


def test_date_defaults_to_now() -> None:
    msg = parse(wire(customer_mail()))
    sent = parsedate_to_datetime(msg["Date"])
    assert abs((dt.datetime.now(dt.UTC) - sent).total_seconds()) < 5


@pytest.mark.parametrize(
    ("lang", "note"),
    [
        ("en", "without a password until 2026-12-04 21:15 UTC: do not forward this email."),
        ("ru", "без пароля до 2026-12-04 21:15 UTC: не пересылайте это письмо."),
    ],
)
def test_a_link_with_a_login_says_until_when(lang: str, note: str) -> None:
    link = (
        "https://example.org/web/?company=pizza-napoli#jid=guest-0a1b2c3d%40example.org&token=t0k"
    )
    mail = customer_mail(chat_link=link, link_expires=TS + dt.timedelta(days=7), lang=lang)
    plain, rich = bodies(parse(wire(mail)))
    assert link in plain and note in " ".join(plain.split())
    assert f'href="{link.replace("&", "&amp;")}"' in rich and note in " ".join(rich.split())
    # No login in the link: no such sentence.
    plain, rich = bodies(parse(wire(customer_mail(chat_link=link, lang=lang))))
    assert note not in " ".join(plain.split()) and note not in " ".join(rich.split())
