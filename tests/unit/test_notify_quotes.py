# ruff: noqa: RUF001  (Russian samples are intended)
"""component.features.notify.quotes: the new text of email replies from common mail clients.

The samples are shaped after what the clients send in reply to an orgchat
notification (text/plain bodies as decoded, HTML bodies as sent).
"""

from __future__ import annotations

import pytest

from component.features.notify.quotes import html_to_text, strip_reply, unflow

REPLY_TO = "reply+5mnzcq2ya4aaaaaaaaaaaaaaaaaaaaaaabcd@reply.biz.localhost"

OUR_MAIL_QUOTED = """\
> Hello Anna,
>
> Pizza Napoli sent you a message in the chat:
>
> Pizza Napoli, 2026-11-27 21:15 UTC:
> We deliver until 23:00. Large or small?
>
> Reply to this email to answer in the chat.
> Open the chat: xmpp:pizza-napoli@biz.localhost?message
>
> --
> You get this email because you did not see the messages of Pizza Napoli in the chat.
"""

GMAIL_EN = f"""\
Large, please. Can you bring it by 8?

Thanks,
Anna

On Fri, Nov 27, 2026 at 9:15\u202fPM Pizza Napoli <
{REPLY_TO}> wrote:

{OUR_MAIL_QUOTED}"""

GMAIL_RU = f"""\
Да, большую. Во сколько привезёте?

пт, 27 нояб. 2026 г. в 21:15, Pizza Napoli <{REPLY_TO}>:

> Здравствуйте, Анна!
> Мы доставляем до 23:00.
"""

GMAIL_RU_WRAPPED = f"""\
Спасибо, жду.

пт, 27 нояб. 2026 г. в 21:15, Пицца Наполи <
{REPLY_TO}>:

> Заказ принят.
"""

GMAIL_DE = f"""\
Passt, danke!

Am Fr., 27. Nov. 2026 um 21:15 Uhr schrieb Pizza Napoli <
{REPLY_TO}>:

> Hallo Anna,
"""

GMAIL_FR = f"""\
Parfait, merci.

Le ven. 27 nov. 2026 à 21:15, Pizza Napoli <{REPLY_TO}> a écrit :

> Bonjour Anna,
"""

OUTLOOK_DESKTOP = """\
We can do four tyres for 320 EUR including fitting.

Best regards
Timur Ivanov
Tyre Shop

-----Original Message-----
From: orgchat <noreply@biz.localhost>
Sent: Friday, November 27, 2026 9:15 PM
To: timur@tyres.example
Subject: New message from Anna at Tyre Shop

Anna sent a message to Tyre Shop in the chat:
Winter tyres 205/55 R16: how much for four?
"""

OUTLOOK_COM = f"""\
Sure, see you then.

________________________________
From: Pizza Napoli <{REPLY_TO}>
Sent: Friday, November 27, 2026 21:15
To: Anna <anna@example.org>
Subject: Pizza Napoli answered you

Hello Anna,
"""

OUTLOOK_DE = """\
Ja, haben wir auf Lager.

Von: orgchat <noreply@biz.localhost>
Gesendet: Freitag, 27. November 2026 21:15
An: vera@tyres.example
Betreff: Neue Nachricht
"""

OUTLOOK_RU = """\
Да, есть в наличии.

От: orgchat <noreply@biz.localhost>
Отправлено: 27 ноября 2026 г. 21:15
Кому: vera@tyres.example
Тема: Новое сообщение
"""

APPLE_IPHONE = f"""\
Great, thanks!

Sent from my iPhone

> On 27 Nov 2026, at 21:15, Pizza Napoli <{REPLY_TO}> wrote:
>
> \ufeffHello Anna,
"""

APPLE_MAC = f"""\
Is there parking near you?

> On 27. Nov 2026, at 21:15, Pizza Napoli <{REPLY_TO}> wrote:
>
> Hello Anna,
"""

APPLE_RU = f"""\
Хорошо, буду в 8.

Отправлено с iPhone

> 27 нояб. 2026 г., в 21:15, Pizza Napoli <{REPLY_TO}> написал(а):
>
> Здравствуйте!
"""

THUNDERBIRD_TOP = """\
OK, I'll come at 8.

On 27/11/2026 21:15, Pizza Napoli wrote:
> Hello Anna,
> Pizza Napoli sent you a message in the chat:
"""

THUNDERBIRD_BOTTOM = """\
On 27.11.26 21:15, Pizza Napoli wrote:
> Pizza Napoli, 2026-11-27 21:15 UTC:
> Do you want the large one?

Yes, the large one please.

--
Anna Petrova
+7 913 000 00 00
"""

THUNDERBIRD_DE = """\
Bis gleich!

Am 27.11.2026 um 21:15 schrieb Pizza Napoli:
> Hallo Anna,
"""

THUNDERBIRD_RU = """\
Понял, спасибо.

27.11.2026 21:15, Pizza Napoli пишет:
> Здравствуйте!
"""

YANDEX = f"""\
Договорились.

27.11.2026, 21:15, "Pizza Napoli" <{REPLY_TO}>:
> Здравствуйте!
"""

MAILRU = f"""\
Подходит.


Пятница, 27 ноября 2026, 21:15 +03:00 от Pizza Napoli <{REPLY_TO}>:
\x20
>Здравствуйте!
"""

INLINE = """\
On Fri, Nov 27, 2026 at 9:15 PM Pizza Napoli wrote:
> Large or small?
Large.
> Delivery or pickup?
Delivery, please.
"""

SIGNATURE = """\
I'll take it.

--\x20
Anna Petrova
https://anna.example.org
"""


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        (GMAIL_EN, "Large, please. Can you bring it by 8?\n\nThanks,\nAnna"),
        (GMAIL_RU, "Да, большую. Во сколько привезёте?"),
        (GMAIL_RU_WRAPPED, "Спасибо, жду."),
        (GMAIL_DE, "Passt, danke!"),
        (GMAIL_FR, "Parfait, merci."),
        (
            OUTLOOK_DESKTOP,
            "We can do four tyres for 320 EUR including fitting.\n\n"
            "Best regards\nTimur Ivanov\nTyre Shop",
        ),
        (OUTLOOK_COM, "Sure, see you then."),
        (OUTLOOK_DE, "Ja, haben wir auf Lager."),
        (OUTLOOK_RU, "Да, есть в наличии."),
        (APPLE_IPHONE, "Great, thanks!"),
        (APPLE_MAC, "Is there parking near you?"),
        (APPLE_RU, "Хорошо, буду в 8."),
        (THUNDERBIRD_TOP, "OK, I'll come at 8."),
        (THUNDERBIRD_BOTTOM, "Yes, the large one please."),
        (THUNDERBIRD_DE, "Bis gleich!"),
        (THUNDERBIRD_RU, "Понял, спасибо."),
        (YANDEX, "Договорились."),
        (MAILRU, "Подходит."),
        (INLINE, "Large.\nDelivery, please."),
        (SIGNATURE, "I'll take it."),
    ],
    ids=[
        "gmail-en",
        "gmail-ru",
        "gmail-ru-wrapped",
        "gmail-de",
        "gmail-fr",
        "outlook-desktop",
        "outlook-com",
        "outlook-de",
        "outlook-ru",
        "apple-iphone",
        "apple-mac",
        "apple-ru",
        "thunderbird-top",
        "thunderbird-bottom",
        "thunderbird-de",
        "thunderbird-ru",
        "yandex",
        "mailru",
        "inline",
        "signature",
    ],
)
def test_strip_reply(sample: str, expected: str) -> None:
    assert strip_reply(sample) == expected
    assert strip_reply(sample.replace("\n", "\r\n")) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Just a plain message without any quote.",
        "My friend wrote:\nthe order number is 5",  # a loose header without quotes after it
        "On Monday I can come.\nIs that fine?",
        "From: the 3rd floor\nto the 5th, please.",  # From: without a Sent:/Date: line
        "Price list attached -- see page 2.",
        "Sent from my office, the invoice follows.",
    ],
)
def test_plain_text_is_kept(text: str) -> None:
    assert strip_reply(text) == text


@pytest.mark.parametrize(
    "signature",
    [
        "Sent from my iPhone",
        "Sent from my Samsung Galaxy smartphone.",
        "Sent from Outlook for Android",
        "Get Outlook for iOS",
        "Sent from Yahoo Mail on Android",
        "Von meinem iPhone gesendet",
        "Envoyé de mon iPhone",
        "Отправлено из мобильной Почты Mail.ru",
        "Отправлено с iPad",
        "Enviado desde mi iPhone",
        "--",
        "-- ",
    ],
)
def test_mobile_signatures_and_delimiters(signature: str) -> None:
    assert strip_reply(f"Yes.\n\n{signature}\nmore") == "Yes."


def test_forwarded_divider_and_whitespace() -> None:
    text = "\n\n  Fine by me.  \n\n\n\nReally.\n\n---------- Forwarded message ---------\nFrom: x"
    assert strip_reply(text) == "Fine by me.\n\nReally."


def test_nothing_new() -> None:
    assert strip_reply(OUR_MAIL_QUOTED) == ""
    assert strip_reply("") == ""
    assert strip_reply("On Fri, Nov 27, 2026 at 9:15 PM X wrote:\n> hi\n") == ""


GMAIL_HTML = f"""\
<div dir="ltr">Large, please.<div><br></div><div>Anna</div></div><br>\
<div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Fri, Nov 27, 2026 at 9:15\
&#8239;PM Pizza Napoli &lt;<a href="mailto:{REPLY_TO}">{REPLY_TO}</a>&gt; wrote:<br></div>\
<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid \
rgb(204,204,204);padding-left:1ex"><div><p>Hello Anna,</p><p>We deliver until 23:00.</p>\
<blockquote>nested</blockquote><p>still quoted</p></div></blockquote></div>
"""

OUTLOOK_HTML = """\
<html xmlns:o="urn:schemas-microsoft-com:office:office"><head>
<meta http-equiv="Content-Type" content="text/html; charset=utf-8">
<style><!-- p.MsoNormal {margin:0cm; font-family:"Calibri",sans-serif;} --></style>
</head><body lang="DE"><div class="WordSection1">
<p class="MsoNormal">We can do 320&nbsp;EUR &amp; fitting.<o:p></o:p></p>
<p class="MsoNormal"><o:p>&nbsp;</o:p></p>
<div><div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">
<p class="MsoNormal"><b>From:</b> orgchat &lt;noreply@biz.localhost&gt; <br>
<b>Sent:</b> Friday, November 27, 2026 9:15 PM<br><b>To:</b> timur@tyres.example<br>
<b>Subject:</b> New message from Anna at Tyre Shop<o:p></o:p></p></div></div>
<p class="MsoNormal">Anna sent a message to Tyre Shop in the chat:</p></div></body></html>
"""

APPLE_HTML = f"""\
<html><head><meta http-equiv="content-type" content="text/html; charset=utf-8"></head>\
<body dir="auto"><div dir="ltr">Great, thanks!</div><div dir="ltr"><br>\
<blockquote type="cite">On 27 Nov 2026, at 21:15, Pizza Napoli &lt;{REPLY_TO}&gt; wrote:\
<br><br></blockquote></div><blockquote type="cite"><div dir="ltr">Hello Anna</div>\
</blockquote></body></html>
"""

THUNDERBIRD_HTML = """\
<html><head><meta http-equiv="Content-Type" content="text/html; charset=UTF-8"></head>
<body><p>Понял, спасибо.<br></p>
<div class="moz-cite-prefix">27.11.2026 21:15, Pizza Napoli пишет:<br></div>
<blockquote type="cite"><p>Здравствуйте!</p></blockquote>
<pre class="moz-signature" cols="72">--\x20
Анна</pre></body></html>
"""


def test_html_to_text_basics() -> None:
    html = (
        "<html><head><title>T</title><style>p{color:red}</style>"
        "<script>alert('x')</script></head><body>"
        "<p>Hello&nbsp;<b>world</b> &amp; &lt;friends&gt;</p>"
        "<ul><li>one</li><li>two</li></ul>line<br/>break"
        "<pre>  keep   spacing</pre><blockquote>quoted</blockquote>end</body></html>"
    )
    assert html_to_text(html) == (
        "Hello world & <friends>\n\n- one\n- two\n\nline\nbreak\n\n  keep   spacing\n\nend"
    )


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        (GMAIL_HTML, "Large, please.\n\nAnna"),
        (OUTLOOK_HTML, "We can do 320 EUR & fitting."),
        (APPLE_HTML, "Great, thanks!"),
        (THUNDERBIRD_HTML, "Понял, спасибо."),
    ],
    ids=["gmail", "outlook", "apple", "thunderbird-ru"],
)
def test_html_replies(html: str, expected: str) -> None:
    assert strip_reply(html_to_text(html)) == expected


def test_html_never_leaks_quoted_text() -> None:
    text = html_to_text(GMAIL_HTML)
    assert "still quoted" not in text
    assert "nested" not in text
    assert "We deliver" not in text


def test_unflow() -> None:
    flowed = (
        "This is a long line that the client wrapped \r\n"
        "at seventy-two characters.\r\n"
        " >not a quote, space-stuffed\r\n"
        "> quoted flowed \r\n"
        "> continues\r\n"
        "-- \r\n"
        "sig"
    )
    assert unflow(flowed) == (
        "This is a long line that the client wrapped at seventy-two characters.\n"
        ">not a quote, space-stuffed\n"
        "> quoted flowed continues\n"
        "-- \n"
        "sig"
    )
    assert unflow("wrapped \nhere", delsp=True) == "wrappedhere"
    assert unflow("ends flowed ") == "ends flowed "
