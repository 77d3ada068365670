"""The XEP-0114 connection to ejabberd: connect, hand stanzas over, reconnect.

This class only connects and dispatches. <message/> stanzas skip slixmpp's
stanza objects and handler matching altogether (the hot path works on the
parsed element, see :mod:`component.routing.wire`); <presence/> goes to the
presence router as an element too; IQs use slixmpp's machinery, which builds
correct replies and errors. slixmpp's in-memory roster (which would answer
probes and subscriptions from process memory) is switched off: presence
state lives in Redis.

ejabberd does not queue stanzas for a missing component and slixmpp's
ComponentXMPP does not reconnect by itself, so the connection is supervised
here with exponential backoff.

Nothing a user sends can cut the connection: a stanza nested deeper than
:data:`MAX_DEPTH` (whose error reply slixmpp would build by deep copies, and
overflow Python's stack) is answered here, from its attributes alone; and no
stanza larger than ejabberd's ``max_stanza_size`` is ever written (ejabberd
would close the stream): it is dropped and logged instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from xml.etree.ElementTree import Element

from slixmpp.componentxmpp import ComponentXMPP
from slixmpp.xmlstream.stanzabase import StanzaBase
from slixmpp.xmlstream.xmlstream import NotConnectedError

from component import metrics
from component.config import ComponentSettings
from component.errors import NotConnected
from component.logs import get_logger
from component.routing.wire import NS_CLIENT, NS_COMPONENT, NS_STANZAS
from extensions.xml import escape_attr, to_xml

log = get_logger(__name__)


#: Deepest nesting below a stanza's root that is handled; orgchat's own payloads
#: go 5 levels deep (iq > command > x > field > value).
MAX_DEPTH = 32
IQ_TAGS = frozenset({f"{{{NS_COMPONENT}}}iq", f"{{{NS_CLIENT}}}iq"})
MESSAGE_TAGS = frozenset({f"{{{NS_COMPONENT}}}message", f"{{{NS_CLIENT}}}message"})
PRESENCE_TAGS = frozenset({f"{{{NS_COMPONENT}}}presence", f"{{{NS_CLIENT}}}presence"})


class ComponentStream(ComponentXMPP):
    def __init__(self, settings: ComponentSettings) -> None:
        super().__init__(settings.domain, settings.secret, settings.host, settings.port)  # type: ignore[no-untyped-call]
        self.settings = settings
        self._on_message: Callable[[Element], None] | None = None
        self._on_presence: Callable[[Element], None] | None = None
        self._on_session: Callable[[], Awaitable[None]] | None = None
        self._stopping = False
        self._delay = settings.reconnect_min_delay
        self.connected_event = asyncio.Event()
        # Our routers own messages and presence; slixmpp's roster stays out.
        for name in ("IM", "IMError", "Presence"):
            self.remove_handler(name)
        self.del_event_handler("presence_probe", self._handle_probe)
        self.add_event_handler("session_start", self._on_session_start)
        self.add_event_handler("disconnected", self._on_disconnected)
        self.add_event_handler("connection_failed", self._on_connection_failed)
        self.add_event_handler("stream_error", self._on_stream_error)

    # -- dispatch ------------------------------------------------------------

    def route(
        self,
        on_message: Callable[[Element], None],
        on_presence: Callable[[Element], None],
        on_session: Callable[[], Awaitable[None]],
    ) -> None:
        """Hand <message/> and <presence/> elements, and each new session, to the
        routers (before :meth:`start`; IQs go through slixmpp's handlers)."""
        self._on_message = on_message
        self._on_presence = on_presence
        self._on_session = on_session

    def _spawn_event(self, xml: Element) -> None:
        tag = xml.tag
        to = xml.get("to")
        if to is not None and _domain(to) != self.settings.domain:
            # ejabberd gives a component the routes of every domain of its
            # listener: never answer for a domain that is not ours.
            log.warning("component.foreign_stanza", to=to, tag=tag)
            return
        if too_deep(xml, MAX_DEPTH):
            self._refuse_deep(xml)
            return
        if tag in MESSAGE_TAGS and self._on_message is not None:
            self._on_message(xml)
        elif tag in PRESENCE_TAGS and self._on_presence is not None:
            self._on_presence(xml)
        else:
            super()._spawn_event(xml)

    def _refuse_deep(self, xml: Element) -> None:
        """Answer a stanza nested too deep without touching its payload."""
        kind = xml.tag.rpartition("}")[2]
        log.warning("component.stanza_too_deep", sender=xml.get("from"), tag=kind)
        stype = xml.get("type") or ""
        if kind == "presence" or stype in ("error", "result", "headline") or not xml.get("from"):
            return  # nothing to answer (RFC 6120 §8.3.1)
        if kind == "iq" and stype not in ("get", "set"):
            return
        id_attr = f' id="{escape_attr(xml.get("id") or "")}"' if xml.get("id") else ""
        self.send_raw(
            f'<{kind} type="error" from="{escape_attr(xml.get("to") or "")}" '
            f'to="{escape_attr(xml.get("from") or "")}"{id_attr}><error type="modify">'
            f'<policy-violation xmlns="{NS_STANZAS}"/><text xmlns="{NS_STANZAS}">'
            "This stanza is nested too deeply</text></error></" + kind + ">"
        )

    def send(self, data: StanzaBase | str, use_filters: bool = True) -> None:
        """slixmpp's send, a stanza serialised by :func:`extensions.xml.to_xml`
        (a page of 50 search results took 2.5 ms of the event loop, slixmpp's
        own serialiser 5.5 ms; the search now writes its answers as strings,
        through the Outbox). The component registers no outgoing filter that
        would want the stanza object; before the session, slixmpp's queueing
        decides on the object as always."""
        if isinstance(data, StanzaBase) and self._session_started:
            with contextlib.suppress(ValueError):  # a namespaced attribute: slixmpp's prefixes
                data = to_xml(data.xml, within=self.default_ns)
        super().send(data, use_filters)

    def send_raw(self, data: str | bytes) -> None:
        """What slixmpp sends (one stanza: IQ answers), never larger than ejabberd takes."""
        if stanza_size(data) > self.settings.max_stanza_size:
            log.error("component.stanza_too_large", size=stanza_size(data))
            return
        super().send_raw(data)

    def write(self, data: str) -> None:
        """Write raw stanzas; raises NotConnected when the stream is down."""
        if not self.connected_event.is_set():
            raise NotConnected()
        try:
            # The routers' writes are many stanzas at once, each checked by the Outbox.
            super().send_raw(data)
        except NotConnectedError:
            raise NotConnected() from None

    # -- connection supervision ----------------------------------------------

    def start(self) -> None:
        self.connect()

    async def stop(self) -> None:
        self._stopping = True
        self.connected_event.clear()
        if self.transport is not None:
            await self.disconnect(wait=2.0, reason="shutdown")
        self.cancel_connection_attempt()

    async def _on_session_start(self, _event: object) -> None:
        self._delay = self.settings.reconnect_min_delay
        self.connected_event.set()
        metrics.stream_changed(True)
        log.info(
            "component.connected",
            domain=self.settings.domain,
            server=f"{self.settings.host}:{self.settings.port}",
        )
        if self._on_session is not None:
            await self._on_session()

    def _on_disconnected(self, reason: object) -> None:
        was_up = self.connected_event.is_set()
        self.connected_event.clear()
        metrics.stream_changed(False, lost=not self._stopping)
        if self._stopping:
            return
        delay = self._delay * (0.8 + 0.4 * random.random())
        self._delay = min(self._delay * 2, self.settings.reconnect_max_delay)
        log.warning(
            "component.disconnected",
            reason=str(reason) or None,
            was_up=was_up,
            retry_in_s=round(delay, 2),
        )
        asyncio.get_running_loop().call_later(delay, self._reconnect)

    def _reconnect(self) -> None:
        if not self._stopping and self.transport is None and not self.is_connecting():
            self.connect()

    def _on_connection_failed(self, error: object) -> None:
        # slixmpp retries failed connects itself, doubling its wait up to 300 s;
        # keep that wait within our own bound (it doubles it right after this).
        cap = max(0.0, (self.settings.reconnect_max_delay - 1) / 2)
        self._connect_loop_wait = min(self._connect_loop_wait, cap)
        log.warning("component.connection_failed", error=str(error))

    def _on_stream_error(self, error: object) -> None:
        log.error("component.stream_error", error=str(error))


def _domain(jid: str) -> str:
    bare = jid.partition("/")[0]
    return bare.rpartition("@")[2]


def too_deep(xml: Element, limit: int) -> bool:
    """Whether any element lies more than ``limit`` levels below ``xml`` (no recursion)."""
    if limit > 0 and not any(map(len, xml)):
        return False  # children without children: most stanzas, told in one pass in C
    level = [xml]
    for _ in range(limit + 1):  # level by level: a message's are done after two
        level = [child for element in level for child in element]
        if not level:
            return False
    return True


def stanza_size(data: str | bytes) -> int:
    """Bytes on the wire (UTF-8), counting characters where that cannot be more."""
    if isinstance(data, bytes):
        return len(data)
    return len(data) if data.isascii() else len(data.encode())
