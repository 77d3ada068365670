"""Real XMPP clients for the integration tests, logged in through ejabberd's c2s.

Two independent libraries play customers and agents: slixmpp and aioxmpp.
Both expose the same small interface (``send_xml``, ``expect``, ``stop``), and
every stanza they receive is kept as a parsed element so tests can assert
on exactly what a standard client gets.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree as ET

import slixmpp

C2S = ("127.0.0.1", 5222)
NS_CLIENT = "jabber:client"


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def child(el: ET.Element, name: str, ns: str | None = None) -> ET.Element | None:
    for c in el:
        if local(c.tag) == name and (ns is None or c.tag.startswith("{" + ns + "}")):
            return c
    return None


def text_of(el: ET.Element, name: str) -> str | None:
    c = child(el, name)
    return None if c is None else c.text


Predicate = Callable[[ET.Element], bool]


class Inbox:
    """Received stanzas, with waiting for one that matches."""

    def __init__(self) -> None:
        self.items: list[ET.Element] = []
        self._changed = asyncio.Event()

    def put(self, el: ET.Element) -> None:
        self.items.append(el)
        self._changed.set()

    async def expect(self, pred: Predicate, wait: float = 10.0) -> ET.Element:
        """The first stanza matching ``pred`` (consumed), waiting for it if needed."""
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            for i, el in enumerate(self.items):
                if pred(el):
                    return self.items.pop(i)
            self._changed.clear()
            left = deadline - asyncio.get_running_loop().time()
            try:
                await asyncio.wait_for(self._changed.wait(), max(left, 0))
            except TimeoutError:
                seen = "\n".join(ET.tostring(e, encoding="unicode")[:300] for e in self.items)
                raise AssertionError(
                    f"no matching stanza within {wait}s; received:\n{seen}"
                ) from None

    async def absent(self, pred: Predicate, wait: float = 1.0) -> None:
        """Assert that nothing matching ``pred`` arrives within ``wait`` seconds."""
        try:
            el = await self.expect(pred, wait)
        except AssertionError:
            return  # nothing came: what was asserted
        raise AssertionError(f"unexpected stanza: {ET.tostring(el, encoding='unicode')}")


def is_message(body: str | None = None, frm: str | None = None) -> Predicate:
    def pred(el: ET.Element) -> bool:
        if local(el.tag) != "message" or el.get("type") == "error":
            return False
        if frm is not None and (el.get("from") or "").split("/")[0] != frm:
            return False
        return body is None or text_of(el, "body") == body

    return pred


def is_error(condition: str, frm: str | None = None) -> Predicate:
    def pred(el: ET.Element) -> bool:
        if el.get("type") != "error":
            return False
        if frm is not None and (el.get("from") or "").split("/")[0] != frm:
            return False
        err = child(el, "error")
        return err is not None and child(err, condition) is not None

    return pred


def error_type(el: ET.Element) -> str | None:
    err = child(el, "error")
    return None if err is None else err.get("type")


class SlixClient(slixmpp.ClientXMPP):  # type: ignore[misc]
    """A slixmpp client that records every stanza it receives."""

    def __init__(self, jid: str, password: str, port: int = C2S[1]) -> None:
        super().__init__(jid, password)
        self.c2s = (C2S[0], port)
        self.enable_starttls = False
        self.enable_direct_tls = False
        self.enable_plaintext = True
        self.plugin["feature_mechanisms"].unencrypted_plain = True
        self.register_plugin("xep_0030")
        self.inbox = Inbox()
        self._ready = asyncio.Event()
        self.add_event_handler("session_start", self._on_start)
        self.announce = True

    def _spawn_event(self, xml: ET.Element) -> None:
        if local(xml.tag) in ("message", "presence") or (
            local(xml.tag) == "iq" and xml.get("type") in ("result", "error")
        ):
            self.inbox.put(xml)
        super()._spawn_event(xml)

    async def _on_start(self, _: Any) -> None:
        await self.get_roster()
        if self.announce:
            self.send_presence()
        self._ready.set()

    async def start(self, announce: bool = True) -> SlixClient:
        self.announce = announce
        self.connect(*self.c2s)
        await asyncio.wait_for(self._ready.wait(), 15)
        return self

    def send_xml(self, xml: str) -> None:
        self.send_raw(xml)

    async def stop(self) -> None:
        if self.transport is not None:
            await self.disconnect(wait=1)

    def kill(self) -> None:
        """Drop the TCP connection without closing the stream (a crashed client)."""
        if self.transport is not None:
            self.transport.abort()


class AioClient:
    """An aioxmpp client (independent implementation) that records messages."""

    def __init__(self, jid: str, password: str, port: int = C2S[1]) -> None:
        import aioxmpp
        import aioxmpp.connector

        self.jid = jid
        layer = aioxmpp.make_security_layer(password, no_verify=True)._replace(tls_required=False)
        self.client = aioxmpp.Client(
            aioxmpp.JID.fromstr(jid),
            layer,
            override_peer=[(C2S[0], port, aioxmpp.connector.STARTTLSConnector())],
        )
        self.inbox = Inbox()
        self._stack: contextlib.AsyncExitStack | None = None
        self._sending: set[asyncio.Future[Any]] = set()

    async def start(self, announce: bool = True) -> AioClient:
        import aioxmpp

        def on_message(msg: Any) -> None:
            self.inbox.put(_aio_to_element(msg))

        import aioxmpp.dispatcher

        dispatcher = self.client.summon(aioxmpp.dispatcher.SimpleMessageDispatcher)
        dispatcher.register_callback(None, None, on_message)
        self._stack = contextlib.AsyncExitStack()
        connected = self.client.connected(presence=aioxmpp.PresenceState(False))
        await asyncio.wait_for(self._stack.enter_async_context(connected), 15)
        if announce:
            self.client.summon(aioxmpp.PresenceServer).set_presence(aioxmpp.PresenceState(True))
        return self

    def send_xml(self, xml: str) -> None:
        """Send a <message/> given as XML, through aioxmpp's own stanza classes."""
        import aioxmpp
        import aioxmpp.mdr  # registers the XEP-0184 payloads on aioxmpp.Message

        el = ET.fromstring(xml)
        mtype = {"chat": aioxmpp.MessageType.CHAT, "normal": aioxmpp.MessageType.NORMAL}[
            el.get("type", "chat")
        ]
        msg = aioxmpp.Message(type_=mtype, to=aioxmpp.JID.fromstr(el.get("to", "")))
        if el.get("id"):
            msg.id_ = el.get("id")
        body = text_of(el, "body")
        if body is not None:
            msg.body[None] = body
        if child(el, "request", "urn:xmpp:receipts") is not None:
            msg.xep0184_request_receipt = True
        self._sending.add(task := asyncio.ensure_future(self.client.send(msg)))
        task.add_done_callback(self._sending.discard)

    async def stop(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = None


def _aio_to_element(msg: Any) -> ET.Element:
    """aioxmpp.Message -> ElementTree, via aioxmpp's own serialiser."""
    import aioxmpp.xml

    return ET.fromstring(aioxmpp.xml.serialize_single_xso(msg))


def new_id() -> str:
    return uuid.uuid4().hex[:12]


def chat(to: str, body: str | None, mid: str | None = None, extra: str = "") -> str:
    """A chat message as a client sends it; ``extra`` is appended raw."""
    body_el = f"<body>{body}</body>" if body is not None else ""
    return f'<message to="{to}" type="chat" id="{mid or new_id()}">{body_el}{extra}</message>'
