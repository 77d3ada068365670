"""Property-based tests (hypothesis) of what parses untrusted input: whatever a
client, a mail server or a company's admin sends, the parsers answer with a
result or their own error (PayloadError, HoursError, a refusal), never with a
crash, and what the component writes back is well-formed XML that reads back
the same."""

from __future__ import annotations

import contextlib
import datetime as dt
import email.policy
from email.parser import BytesParser
from xml.etree import ElementTree as ET

from hypothesis import given, settings
from hypothesis import strategies as st

from component import hours
from component.features.notify.inbound import extract_text
from component.features.notify.quotes import html_to_text, strip_reply
from component.routing.wire import clean_nick, parse_message, render_chat
from extensions.notify import stanza as notify
from extensions.request import create, offers, queries
from extensions.xml import PayloadError, escape_attr, escape_text, fits_xml, xml_safe
from storage.models import OwnCopy
from storage.postgres.tables import user_archives

NS = "jabber:component:accept"

#: Characters XML 1.0 can carry (what a parsed stanza can hold).
xml_chars = st.characters(
    blacklist_categories=("Cs",),
    blacklist_characters="\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f"
    "\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\ufffe\uffff",
)
xml_text = st.text(xml_chars, max_size=200)
names = st.sampled_from(
    ["body", "thread", "nick", "x", "field", "value", "company", "search", "subject", "offer",
     "decline", "reason", "set", "max", "after", "request", "received", "markable", "a"]
)  # fmt: skip
namespaces = st.sampled_from(
    [NS, "urn:orgchat:request:0", "urn:orgchat:notify:0", "jabber:x:data",
     "http://jabber.org/protocol/nick", "urn:xmpp:receipts", "urn:xmpp:chat-markers:0",
     "http://jabber.org/protocol/rsm", "urn:x:unknown"]
)  # fmt: skip


#: Pieces of opening hours, so that generated hours get past their first character.
hours_pieces = st.sampled_from(
    ["Mo", "Sa", "Su", "Mo-Fr", "Sa[1]", "PH", "Dec", "25", "week", "01-26", "2025", "09:00",
     "18:00", "24:00", "26:00", "10:00+", "-", ",", ";", "||", "off", "unknown", '"by appt"',
     "24/7", "sunrise", "easter", "/", ":", " "]
)  # fmt: skip
opening_hours_text = st.lists(hours_pieces, max_size=12).map(" ".join) | st.text(max_size=80)


@st.composite
def elements(draw: st.DrawFn, depth: int = 0) -> ET.Element:
    el = ET.Element(f"{{{draw(namespaces)}}}{draw(names)}")
    for key in draw(
        st.lists(st.sampled_from(["id", "var", "type", "code", "request"]), max_size=3)
    ):
        el.set(key, draw(xml_text))
    el.text = draw(st.none() | xml_text)
    if depth < 4:
        for child in draw(st.lists(elements(depth + 1), max_size=3)):
            el.append(child)
    return el


@given(xml_text)
def test_escaped_text_and_attributes_read_back_the_same(text: str) -> None:
    parsed = ET.fromstring(f'<a x="{escape_attr(text)}">{escape_text(text)}</a>')
    assert parsed.get("x") == text
    assert (parsed.text or "") == text


#: Text rich in what XML escapes.
special_text = st.text(st.sampled_from("&<>\"'\r\n\t x") | xml_chars, max_size=60)


@given(special_text, special_text, special_text, st.booleans())
def test_own_copies_read_back_as_their_owner_saw_them(
    body: str, message_id: str, peer: str, outgoing: bool
) -> None:
    """The stanza written to a user's own archive (escaped only where needed)."""
    owner = "carol@localhost"
    parsed = ET.fromstring(user_archives.stanza(OwnCopy(owner, peer, outgoing, message_id, body)))
    assert parsed.get("id") == message_id
    assert (parsed.get("from"), parsed.get("to")) == ((owner, peer) if outgoing else (peer, owner))
    assert (parsed.findtext("{jabber:client}body") or "") == body


@given(st.lists(elements(), max_size=5), xml_text)
@settings(max_examples=200)
def test_any_message_parses_and_what_goes_out_is_well_formed(
    children: list[ET.Element], sender: str
) -> None:
    stanza = ET.Element(f"{{{NS}}}message", {"from": "anna@localhost/x", "to": "p@biz.localhost"})
    stanza.extend(children)
    msg = parse_message(stanza, frozenset({"urn:orgchat:request:0"}))
    out = render_chat("p@biz.localhost", sender or "x@y", "id1", body=msg.body, source=msg)
    ET.fromstring(out)  # well-formed
    assert msg.nick is None or (len(msg.nick) <= 64 and msg.nick == clean_nick(msg.nick))


@given(elements())
@settings(max_examples=300)
def test_payload_parsers_answer_or_refuse(el: ET.Element) -> None:
    for parse in (
        create.parse_create,
        offers.parse_offer,
        offers.parse_decline,
        queries.parse_close,
        queries.parse_list,
        queries.parse_get,
        notify.parse_settings,
        notify.parse_confirm,
        notify.parse_subscribe,
    ):
        with contextlib.suppress(PayloadError):
            parse(el)  # type: ignore[operator]


@given(st.text(max_size=2000))
def test_reply_text_is_stripped_without_crashing(text: str) -> None:
    stripped = strip_reply(text)
    # Lines as strip_reply splits them (LF, CR LF, CR), not every Unicode separator.
    lines = stripped.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    assert not any(line.lstrip().startswith(">") for line in lines)
    html_to_text(text)


@given(st.binary(max_size=3000))
@settings(max_examples=200)
def test_any_email_bytes_give_text_xml_can_carry_or_a_refusal(raw: bytes) -> None:
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    try:
        text = extract_text(message)
    except (LookupError, ValueError, UnicodeError, AssertionError):
        return  # the inbound server answers 550 for what cannot be read
    assert xml_safe(text) == text
    ET.fromstring(f"<body>{escape_text(text)}</body>")


@given(st.text())
def test_what_fits_xml_parses_and_what_xml_safe_leaves_fits(text: str) -> None:
    safe = xml_safe(text)
    assert fits_xml(safe)
    assert fits_xml(text) == (safe == text)
    ET.fromstring(f'<body a="{escape_attr(safe)}">{escape_text(safe)}</body>')


@given(
    opening_hours_text,
    st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)),
)
@settings(max_examples=300)
def test_opening_hours_answer_or_refuse_in_one_line(spec: str, now: dt.datetime) -> None:
    try:
        hours.parse(spec)
    except hours.HoursError as exc:
        assert "\n" not in str(exc)
    is_open, opens = hours.open_now(spec, "Europe/Berlin", now)
    assert opens is None or (not is_open and opens > now)
