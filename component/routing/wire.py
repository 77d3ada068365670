"""The message hot path on the wire: parse a <message/> element, render replies.

Every message the component routes goes through these two functions, so
they work on the parsed ElementTree element directly and render outgoing
stanzas as strings: no slixmpp stanza objects, no generic serialiser.

Only payloads listed here are understood and carried to the other side; an
unknown child is dropped, which also guarantees that nothing a customer's
client adds (addresses, delays, forwarded copies) can leak the customer's
JID to an agent. Implements the wire side of:

* RFC 6120/6121 message and error syntax,
* XEP-0085 chat states, XEP-0184 receipts, XEP-0333 chat markers,
* XEP-0359 origin-id and stanza-id, XEP-0172 nicknames in messages,
* XEP-0066 out-of-band URLs, XEP-0308 corrections, XEP-0203 delay,
* XEP-0201 threads;

and, in ``Inbound.payloads``, the children in the namespaces that features
registered (their routing hooks read them, see
:mod:`component.routing.hooks`). Escaping is :mod:`extensions.xml`'s, the one
escaper of every namespace.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import unicodedata
from collections.abc import Sequence
from xml.etree.ElementTree import Element

from component.i18n import XML_LANG, language, translate
from extensions.xml import escape_attr, escape_text

NS_COMPONENT = "jabber:component:accept"
NS_CLIENT = "jabber:client"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_CHATSTATES = "http://jabber.org/protocol/chatstates"
NS_RECEIPTS = "urn:xmpp:receipts"
NS_MARKERS = "urn:xmpp:chat-markers:0"
NS_SID = "urn:xmpp:sid:0"
NS_NICK = "http://jabber.org/protocol/nick"
NS_OOB = "jabber:x:oob"
NS_CORRECT = "urn:xmpp:message-correct:0"
NS_DELAY = "urn:xmpp:delay"
NS_OMEMO_LEGACY = "eu.siacs.conversations.axolotl"
NS_OMEMO = "urn:xmpp:omemo:2"
NS_OPENPGP = "urn:xmpp:openpgp:0"

#: Longest customer nickname (XEP-0172) kept; agents see it in every message.
MAX_NICK = 64

CHAT_STATES = frozenset({"active", "composing", "paused", "inactive", "gone"})
MARKERS = frozenset({"received", "displayed", "acknowledged"})

_CS = "{" + NS_CHATSTATES + "}"
_RCPT = "{" + NS_RECEIPTS + "}"
_MRK = "{" + NS_MARKERS + "}"
_BODIES = frozenset({"{" + NS_COMPONENT + "}body", "{" + NS_CLIENT + "}body"})
_THREADS = frozenset({"{" + NS_COMPONENT + "}thread", "{" + NS_CLIENT + "}thread"})
_ERRORS = frozenset({"{" + NS_COMPONENT + "}error", "{" + NS_CLIENT + "}error"})
_ORIGIN_ID = "{" + NS_SID + "}origin-id"
_NICK = "{" + NS_NICK + "}nick"
_OOB = "{" + NS_OOB + "}x"
_OOB_URL = "{" + NS_OOB + "}url"
_REPLACE = "{" + NS_CORRECT + "}replace"
_ENCRYPTED = frozenset(
    {
        "{" + NS_OMEMO_LEGACY + "}encrypted",
        "{" + NS_OMEMO + "}encrypted",
        "{" + NS_OPENPGP + "}openpgp",
    }
)


@dataclasses.dataclass(slots=True)
class Inbound:
    """What the component understood of one incoming <message/>."""

    sender: str  #: full JID as given by ejabberd
    sender_bare: str
    to: str  #: the addressed JID, bare
    to_local: str  #: its localpart ("" for the component domain itself)
    id: str | None
    type: str
    body: str | None = None
    thread: str | None = None
    origin_id: str | None = None
    nick: str | None = None
    chat_state: str | None = None
    receipt_request: bool = False
    receipt_for: str | None = None  #: XEP-0184 <received id=.../>
    marker: str | None = None  #: XEP-0333 marker name, with marker_for
    marker_for: str | None = None
    markable: bool = False
    oob_url: str | None = None
    replace_id: str | None = None
    encrypted: bool = False
    has_error: bool = False
    unknown_payload: bool = False  #: a child element we do not understand
    #: The stanza's xml:lang: the sender's language (ejabberd gives a client's
    #: messages the language of its stream when they carry none).
    lang: str | None = None
    #: Children in the namespaces features registered, for their routing hooks.
    payloads: list[Element] = dataclasses.field(default_factory=list)

    @property
    def client_key(self) -> str | None:
        """XEP-0359 retransmission key: origin-id, else the stanza id."""
        if self.origin_id:
            return "o:" + self.origin_id
        if self.id:
            return "i:" + self.id
        return None

    @property
    def understood(self) -> bool:
        return bool(self.body is not None or self.chat_state or self.receipt_for or self.marker)


def compose(
    sender: str,
    to: str,
    *,
    body: str | None,
    origin_id: str | None = None,
    payloads: Sequence[Element] = (),
) -> Inbound:
    """A chat message the component writes on someone's behalf (a command, an email)."""
    return dataclasses.replace(
        _addressed(sender, to, None, "chat"),
        body=body,
        origin_id=origin_id,
        payloads=list(payloads),
    )


def _addressed(sender: str, to: str, msg_id: str | None, mtype: str) -> Inbound:
    to_bare = to.split("/", 1)[0]
    local, sep, _ = to_bare.partition("@")
    return Inbound(
        sender=sender,
        sender_bare=sender.split("/", 1)[0],
        to=to_bare,
        to_local=local if sep else "",
        id=msg_id,
        type=mtype,
    )


def parse_message(xml: Element, namespaces: frozenset[str] = frozenset()) -> Inbound:
    """Parse a <message/> element as received from ejabberd; children in
    ``namespaces`` go to ``payloads``."""
    msg = _addressed(
        xml.get("from") or "", xml.get("to") or "", xml.get("id"), xml.get("type") or "normal"
    )
    msg.lang = xml.get(XML_LANG) or None
    for child in xml:
        tag = child.tag
        if tag in _BODIES:
            msg.body = child.text or ""
        elif tag.startswith(_CS):
            name = tag[len(_CS) :]
            if name in CHAT_STATES:
                msg.chat_state = name
            else:
                msg.unknown_payload = True
        elif tag.startswith(_RCPT):
            if tag == _RCPT + "request":
                msg.receipt_request = True
            elif tag == _RCPT + "received":
                msg.receipt_for = child.get("id") or None
        elif tag.startswith(_MRK):
            name = tag[len(_MRK) :]
            if name == "markable":
                msg.markable = True
            elif name in MARKERS and child.get("id"):
                msg.marker = name
                msg.marker_for = child.get("id")
        elif tag == _ORIGIN_ID:
            msg.origin_id = child.get("id") or None
        elif tag == _NICK:
            msg.nick = clean_nick(child.text or "")
        elif tag in _THREADS:
            msg.thread = child.text or None
        elif tag == _OOB:
            url = child.find(_OOB_URL)
            if url is not None and url.text:
                msg.oob_url = url.text.strip()
        elif tag == _REPLACE:
            msg.replace_id = child.get("id") or None
        elif tag in _ENCRYPTED:
            msg.encrypted = True
        elif tag in _ERRORS:
            msg.has_error = True
        elif namespaces and tag[1 : tag.find("}")] in namespaces:
            msg.payloads.append(child)
        else:
            msg.unknown_payload = True
    return msg


def clean_nick(text: str) -> str | None:
    """A nickname as agents may be shown it: no control or format characters
    (bidi overrides, zero-width joiners), white space runs folded, at most
    :data:`MAX_NICK` characters; None if nothing is left."""
    # Only the start is looked at: a nickname of 70,000 characters costs no more.
    head = text[: MAX_NICK * 4]
    kept = "".join(" " if ch.isspace() else ch for ch in head if unicodedata.category(ch)[0] != "C")
    return " ".join(kept.split())[:MAX_NICK].strip() or None


def render_chat(
    frm: str,
    to: str,
    msg_id: str,
    *,
    body: str | None = None,
    source: Inbound | None = None,
    stanza_id: str | None = None,
    stanza_id_by: str | None = None,
    nick: str | None = None,
    delay: dt.datetime | None = None,
    delay_from: str | None = None,
    thread: str | None = None,
    payload: str | None = None,
) -> str:
    """A chat message carrying ``body`` and the payloads understood in ``source``.

    ``source`` is the inbound message whose chat state, receipt request,
    marker, correction and so on travel to the other side unchanged.
    ``thread`` replaces the source's thread; ``payload`` is trusted XML of
    our own namespaces (rendered by the component, never a sender's), added
    after the body.
    """
    parts = [
        f'<message type="chat" from="{escape_attr(frm)}" to="{escape_attr(to)}" '
        f'id="{escape_attr(msg_id)}">'
    ]
    if body is not None:
        parts.append(f"<body>{escape_text(body)}</body>")
    if thread is None and source is not None:
        thread = source.thread
    if thread:
        parts.append(f"<thread>{escape_text(thread)}</thread>")
    if payload:
        parts.append(payload)
    if source is not None:
        if source.chat_state:
            parts.append(f'<{source.chat_state} xmlns="{NS_CHATSTATES}"/>')
        if source.receipt_request and source.id:
            parts.append(f'<request xmlns="{NS_RECEIPTS}"/>')
        if source.receipt_for:
            parts.append(
                f'<received xmlns="{NS_RECEIPTS}" id="{escape_attr(source.receipt_for)}"/>'
            )
        if source.markable:
            parts.append(f'<markable xmlns="{NS_MARKERS}"/>')
        if source.marker and source.marker_for:
            parts.append(
                f'<{source.marker} xmlns="{NS_MARKERS}" id="{escape_attr(source.marker_for)}"/>'
            )
        if source.origin_id:
            parts.append(f'<origin-id xmlns="{NS_SID}" id="{escape_attr(source.origin_id)}"/>')
        if source.replace_id:
            parts.append(f'<replace xmlns="{NS_CORRECT}" id="{escape_attr(source.replace_id)}"/>')
        if source.oob_url:
            parts.append(f'<x xmlns="{NS_OOB}"><url>{escape_text(source.oob_url)}</url></x>')
    if stanza_id and stanza_id_by:
        parts.append(
            f'<stanza-id xmlns="{NS_SID}" id="{escape_attr(stanza_id)}" '
            f'by="{escape_attr(stanza_id_by)}"/>'
        )
    if nick:
        parts.append(f'<nick xmlns="{NS_NICK}">{escape_text(nick)}</nick>')
    if delay is not None:
        stamp = delay.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        frm_attr = f' from="{escape_attr(delay_from)}"' if delay_from else ""
        parts.append(f'<delay xmlns="{NS_DELAY}"{frm_attr} stamp="{stamp}"/>')
    parts.append("</message>")
    return "".join(parts)


def render_receipt(frm: str, to: str, msg_id: str, for_id: str) -> str:
    """XEP-0184 <received/> for message ``for_id``."""
    return (
        f'<message from="{escape_attr(frm)}" to="{escape_attr(to)}" id="{escape_attr(msg_id)}">'
        f'<received xmlns="{NS_RECEIPTS}" id="{escape_attr(for_id)}"/></message>'
    )


def render_error(
    frm: str,
    to: str,
    msg_id: str | None,
    etype: str,
    condition: str,
    text: str | None,
    lang: str | None = None,
) -> str:
    """RFC 6120 §8.3 message error reply; ``text`` is translated into ``lang``
    (the ``xml:lang`` of the message answered)."""
    id_attr = f' id="{escape_attr(msg_id)}"' if msg_id is not None else ""
    text_el = (
        f'<text xmlns="{NS_STANZAS}" xml:lang="{language(lang)}">'
        f"{escape_text(translate(text, lang))}</text>"
        if text
        else ""
    )
    return (
        f'<message type="error" from="{escape_attr(frm)}" to="{escape_attr(to)}"{id_attr}>'
        f'<error type="{etype}"><{condition} xmlns="{NS_STANZAS}"/>{text_el}</error></message>'
    )


def render_presence(frm: str, to: str, ptype: str | None = None, status: str | None = None) -> str:
    """RFC 6121 presence; ``ptype`` None is available."""
    type_attr = f' type="{ptype}"' if ptype else ""
    status_el = f"<status>{escape_text(status)}</status>" if status else ""
    return (
        f'<presence from="{escape_attr(frm)}" to="{escape_attr(to)}"{type_attr}>'
        f"{status_el}</presence>"
    )
