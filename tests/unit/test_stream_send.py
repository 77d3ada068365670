"""What the component's stream writes for a stanza object: extensions.xml's
serialiser, the same XML as slixmpp's own (component/xmpp.py, ComponentStream.send)."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

from slixmpp.stanza import Iq
from slixmpp.xmlstream.tostring import tostring

from component.config import ComponentSettings
from component.features.directory.iq import search_results
from component.search import Hit
from component.xmpp import ComponentStream
from storage.models import Company

DOMAIN = "biz.localhost"
NOON = dt.datetime(2026, 12, 7, 5, 0, tzinfo=dt.UTC)


def _stream() -> ComponentStream:
    stream = ComponentStream(ComponentSettings(domain=DOMAIN))
    stream._session_started = True  # what the handshake sets
    return stream


def _written(stream: ComponentStream) -> list[object]:
    out = []
    while not stream.waiting_queue.empty():
        data, _filters = stream.waiting_queue.get_nowait()
        out.append(data)
    return out


def _canonical(fragment: str, default_ns: str) -> str:
    return ET.canonicalize(f'<w xmlns="{default_ns}">{fragment}</w>')


def _result(stream: ComponentStream) -> Iq:
    iq = stream.make_iq_result(id="s1", ifrom=DOMAIN, ito="anna@localhost/web")
    iq["lang"] = "ru"
    return iq


def test_a_search_result_is_written_as_slixmpp_would_write_it() -> None:
    stream = _stream()
    names = ['A & B <"shop">', "Шина\nКолесо\t1", "Plain"]  # noqa: RUF001
    hits = [
        Hit(Company(n, f"c-{n}", name, None, "UTC", "24/7", "tyres & more", "Omsk"), NOON)
        for n, name in enumerate(names)
    ]
    iq = _result(stream)
    iq.append(ET.fromstring(search_results(hits, None, DOMAIN, "ru")))
    expected = tostring(iq.xml, xmlns=stream.default_ns, stream=stream, top_level=True)
    stream.send(iq)
    [written] = _written(stream)
    assert isinstance(written, str)
    assert 'xmlns="jabber:component:accept"' not in written  # the stream's own namespace
    assert _canonical(written, stream.default_ns) == _canonical(expected, stream.default_ns)
    assert [i.text for i in ET.fromstring(written).iter("{jabber:x:data}value")][::5][:3] == [
        f"c-{n}@{DOMAIN}" for n in range(3)
    ]


def test_carriage_returns_survive() -> None:
    """Unlike slixmpp's serialiser, which writes them raw for the parser to drop."""
    stream = _stream()
    iq = _result(stream)
    ET.SubElement(iq.xml, "{urn:x:a}q").text = "one\r\ntwo"
    stream.send(iq)
    [written] = _written(stream)
    assert isinstance(written, str)
    assert ET.fromstring(written).findtext("{urn:x:a}q") == "one\r\ntwo"


def test_an_error_and_a_foreign_attribute() -> None:
    stream = _stream()
    iq = _result(stream)
    iq["type"] = "error"
    iq["error"]["condition"] = "item-not-found"
    iq["error"]["text"] = "Нет такой компании & <его> нет"  # noqa: RUF001
    expected = tostring(iq.xml, xmlns=stream.default_ns, stream=stream, top_level=True)
    stream.send(iq)
    [written] = _written(stream)
    assert isinstance(written, str)
    assert _canonical(written, stream.default_ns) == _canonical(expected, stream.default_ns)
    # A namespaced attribute other than xml:lang: slixmpp writes its prefix.
    odd = _result(stream)
    ET.SubElement(odd.xml, "{urn:x:a}q", {"{urn:x:b}attr": "1"})
    stream.send(odd)
    assert _written(stream) == [odd]
