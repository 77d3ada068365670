"""XEP-0059 result set management: one page of an ordered list of keys.

Every paged answer of the component (disco#items of the domain, the
directory search) pages a list of keys (company JIDs) with these two
functions; the archive (XEP-0313) pages in PostgreSQL instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree.ElementTree import Element, SubElement

from slixmpp.exceptions import XMPPError

NS_RSM = "http://jabber.org/protocol/rsm"


def rsm_window(keys: Sequence[str], rsm: Element | None, limit: int) -> tuple[int, int]:
    """[start, end) of the page that ``<set/>`` asks for over ``keys``.

    ``<max/>`` (at most ``limit``; 0 asks for the count only), ``<after/>``,
    ``<before/>`` (empty: the last page) and ``<index/>``. A key that is not
    in ``keys`` is ``item-not-found`` (XEP-0059 §2.5).
    """
    start, end = 0, len(keys)
    if rsm is None:
        return start, min(end, limit)
    try:
        max_text = (rsm.findtext(f"{{{NS_RSM}}}max") or "").strip()
        index_text = (rsm.findtext(f"{{{NS_RSM}}}index") or "").strip()
        size = max(0, min(int(max_text), limit)) if max_text else limit
        if index_text:
            start = max(0, int(index_text))
    except ValueError:
        raise XMPPError("bad-request", "Malformed result set request", etype="modify") from None
    after = rsm.find(f"{{{NS_RSM}}}after")
    before = rsm.find(f"{{{NS_RSM}}}before")
    if after is not None and after.text:
        start = _position(keys, after.text.strip()) + 1
    if before is not None:
        end = _position(keys, before.text.strip()) if before.text else len(keys)
        start = max(0, end - size)
    start = min(start, len(keys))
    return start, max(start, min(end, start + size))


def _position(keys: Sequence[str], key: str) -> int:
    try:
        return list(keys).index(key)
    except ValueError:
        raise XMPPError("item-not-found", "Unknown result set position", etype="cancel") from None


def rsm_set(keys: Sequence[str], start: int, end: int) -> Element:
    out = Element(f"{{{NS_RSM}}}set")
    if end > start:
        SubElement(out, f"{{{NS_RSM}}}first", index=str(start)).text = keys[start]
        SubElement(out, f"{{{NS_RSM}}}last").text = keys[end - 1]
    SubElement(out, f"{{{NS_RSM}}}count").text = str(len(keys))
    return out
