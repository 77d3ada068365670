"""<close/>, <request/> and <requests/>: closing, reading and listing requests.

Part of ``urn:orgchat:request:0``; see :mod:`extensions.request.stanza`.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement

from extensions.request.stanza import (
    LIST_DEFAULT,
    LIST_MAX,
    NS,
    NS_RSM,
    RSM_SET,
    STATES,
    describe,
    expect,
    leaf_text,
    no_children,
    once,
    q,
    request_id,
)
from extensions.xml import PayloadError, bare_jid, boolean, integer


@dataclass(frozen=True)
class Close:
    request: str
    accept: str | None  #: the company whose offer is accepted (bare JID)


def parse_close(el: Element) -> Close:
    """Parse ``<close xmlns="urn:orgchat:request:0" request="r..." accept="jid"/>`` (IQ set)."""
    expect(el, NS, "close")
    no_children(el)
    request = request_id(el.get("request"), "the request attribute")
    accept = el.get("accept")
    return Close(request, None if accept is None else bare_jid(accept, "the accept attribute"))


def close_element(close: Close) -> Element:
    """The ``<close/>`` a client sends (``accept`` only when set)::

    <close xmlns="urn:orgchat:request:0" request="rabcdefghijklmnopqrst"
           accept="tyres-north@biz.localhost"/>
    """
    attrib = {"request": close.request}
    if close.accept is not None:
        attrib["accept"] = close.accept
    return Element(q("close"), attrib)


def parse_get(el: Element) -> str:
    """Parse ``<request xmlns="urn:orgchat:request:0" id="r..."/>`` of an IQ get: the id."""
    expect(el, NS, "request")
    no_children(el)
    return request_id(el.get("id"), "the id attribute")


def get_element(request_id: str) -> Element:
    """The IQ get payload asking for one request::

    <request xmlns="urn:orgchat:request:0" id="rabcdefghijklmnopqrst"/>
    """
    return Element(q("request"), {"id": request_id})


@dataclass(frozen=True)
class ListQuery:
    state: str | None
    max: int
    after: str | None
    before: str | None  #: "" asks for the last page
    full: bool = False  #: each request in full (offers, decline reasons), not a summary


def parse_list(el: Element) -> ListQuery:
    """Parse ``<requests xmlns="urn:orgchat:request:0" state="open" full="true"/>`` (IQ get).

    ``full`` (XML Schema boolean, default false) asks for every request as
    in a get result (body, fields, per company its last change, offer and
    decline reason) rather than a summary. An optional XEP-0059 ``<set/>``
    gives ``<max/>`` (default 20, capped at 100), ``<after/>`` or ``<before/>``
    (request ids; ``<before/>`` empty for the last page). ``<index/>`` is not
    supported.
    """
    expect(el, NS, "requests")
    state = el.get("state")
    if state is not None and state not in STATES:
        raise PayloadError("the state must be open, closed or expired")
    full = boolean(el.get("full"), "the full attribute", default=False)
    limit = LIST_DEFAULT
    after: str | None = None
    before: str | None = None
    rsm: Element | None = None
    for child in el:
        if child.tag != RSM_SET:
            raise PayloadError(f"unexpected {describe(child)} in <requests/>")
        once(rsm, child)
        rsm = child
    if rsm is not None:
        seen: set[str] = set()
        for child in rsm:
            if child.tag in seen:
                raise PayloadError(f"{describe(child)} appears twice in the result set")
            seen.add(child.tag)
            if child.tag == "{" + NS_RSM + "}max":
                limit = integer(leaf_text(child), "the result set max")
            elif child.tag == "{" + NS_RSM + "}after":
                after = request_id(leaf_text(child), "the result set after")
            elif child.tag == "{" + NS_RSM + "}before":
                text = leaf_text(child)
                before = request_id(text, "the result set before") if text else ""
            elif child.tag == "{" + NS_RSM + "}index":
                raise PayloadError("result set index is not supported, use after or before")
            else:
                raise PayloadError(f"unexpected {describe(child)} in the result set")
        if after is not None and before is not None:
            raise PayloadError("give either after or before in the result set, not both")
    return ListQuery(state, min(limit, LIST_MAX), after, before, full)


def list_element(query: ListQuery) -> Element:
    """The list query a client sends::

        <requests xmlns="urn:orgchat:request:0" state="open">
          <set xmlns="http://jabber.org/protocol/rsm"><max>10</max></set>
        </requests>

    (``state`` when set, ``full="true"`` when asked; ``<after/>``,
    ``<before/>`` when set, ``<before/>`` empty for "").
    """
    el = Element(q("requests"), {} if query.state is None else {"state": query.state})
    if query.full:
        el.set("full", "true")
    rsm = SubElement(el, RSM_SET)
    SubElement(rsm, "{" + NS_RSM + "}max").text = str(query.max)
    if query.after is not None:
        SubElement(rsm, "{" + NS_RSM + "}after").text = query.after
    if query.before is not None:
        SubElement(rsm, "{" + NS_RSM + "}before").text = query.before or None
    return el
