"""XEP-0059 result set management: what a ``<set/>`` asks for, and the ``<set/>``
that describes a page.

The paged answers of the component (disco#items of the domain, the
directory search) page through PostgreSQL with these two functions
(:mod:`component.search`); the archive (XEP-0313) has its own keys.
"""

from __future__ import annotations

import dataclasses
from xml.etree.ElementTree import Element, SubElement

from slixmpp.exceptions import XMPPError

NS_RSM = "http://jabber.org/protocol/rsm"


@dataclasses.dataclass(frozen=True, slots=True)
class RsmRequest:
    """One page asked for: at most ``max`` items, after or before an item
    (``before == ""``: the last page), or from position ``index``."""

    max: int
    after: str | None = None
    before: str | None = None
    index: int = 0


def parse_rsm(rsm: Element | None, limit: int) -> RsmRequest:
    """What ``<set/>`` asks for; ``<max/>`` is at most ``limit`` (0 asks for the
    count only). A malformed number is ``bad-request``."""
    if rsm is None:
        return RsmRequest(max=limit)
    try:
        max_text = (rsm.findtext(f"{{{NS_RSM}}}max") or "").strip()
        index_text = (rsm.findtext(f"{{{NS_RSM}}}index") or "").strip()
        size = max(0, min(int(max_text), limit)) if max_text else limit
        index = max(0, int(index_text)) if index_text else 0
    except ValueError:
        raise XMPPError("bad-request", "Malformed result set request", etype="modify") from None
    after = (rsm.findtext(f"{{{NS_RSM}}}after") or "").strip() or None
    before_el = rsm.find(f"{{{NS_RSM}}}before")
    before = None if before_el is None else (before_el.text or "").strip()
    return RsmRequest(max=size, after=after, before=before, index=index)


def unknown_position() -> XMPPError:
    """XEP-0059 §2.5: an ``<after/>`` or ``<before/>`` naming no item of the set."""
    return XMPPError("item-not-found", "Unknown result set position", etype="cancel")


def rsm_result(
    first: str | None, last: str | None, index: int | None, count: int | None
) -> Element:
    """The ``<set/>`` of a page: its first item (and that item's position) and
    last item, and the size of the whole set, each when known."""
    out = Element(f"{{{NS_RSM}}}set")
    if first is not None and last is not None:
        first_el = SubElement(out, f"{{{NS_RSM}}}first")
        if index is not None:
            first_el.set("index", str(index))
        first_el.text = first
        SubElement(out, f"{{{NS_RSM}}}last").text = last
    if count is not None:
        SubElement(out, f"{{{NS_RSM}}}count").text = str(count)
    return out
