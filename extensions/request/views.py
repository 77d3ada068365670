"""Requests as the customer sees them: the results of the IQs.

Part of ``urn:orgchat:request:0``; see :mod:`extensions.request.stanza`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement

from extensions.forms import Form, read_form
from extensions.request.offers import Offer, offer_form, parse_offer
from extensions.request.stanza import (
    DATA_X,
    MAX_VALUE,
    NS,
    NS_RSM,
    RSM_SET,
    describe,
    expect,
    leaf_text,
    parse_stamp,
    q,
    request_id,
    required_attr,
    stamp,
)
from extensions.xml import PayloadError, boolean, integer


@dataclass(frozen=True)
class TargetView:
    """One company of a request, as the customer sees it."""

    jid: str
    status: str  #: one of TARGET_STATUSES
    name: str | None = None
    reason: str | None = None  #: with status refused: one of REFUSAL_REASONS
    opens: str | None = None  #: with reason closed: next opening, company's local time
    updated: dt.datetime | None = None
    offer: Offer | None = None
    decline_reason: str | None = None


@dataclass(frozen=True)
class RequestView:
    id: str
    state: str  #: one of STATES
    subject: str
    created: dt.datetime
    expires: dt.datetime
    targets: tuple[TargetView, ...]
    body: str | None = None
    form: Form | None = None
    closed: dt.datetime | None = None
    accepted: str | None = None  #: JID of the company whose offer was accepted
    duplicate: bool = False


def request_element(view: RequestView) -> Element:
    """The ``<request/>`` of create, get and close results::

        <request xmlns="urn:orgchat:request:0" id="rabcdefghijklmnopqrst" state="closed"
                 created="2026-11-28T10:00:00Z" expires="2026-12-01T10:00:00Z"
                 closed="2026-11-28T12:00:00Z" accepted="tyres-north@biz.localhost">
          <subject>Winter tyres 205/55 R16</subject>
          <body>How much for four, fitted, this week?</body>
          <x xmlns="jabber:x:data" type="result">...#fields...</x>
          <target jid="tyres-north@biz.localhost" name="Tyres North" status="answered"
                  updated="2026-11-28T10:40:00Z">
            <offer><x xmlns="jabber:x:data" type="result">...#offer...</x></offer>
          </target>
          <target jid="tyres-south@biz.localhost" name="Tyres South" status="declined"
                  updated="2026-11-28T10:20:00Z">
            <reason>Out of stock</reason>
          </target>
          <target jid="nope@biz.localhost" status="refused" reason="unknown"/>
        </request>

    ``...#fields...`` and ``...#offer...`` stand for the fields as
    form_element writes them (see form_element for the offer's).
    Optional attributes and children appear only when set: ``closed``,
    ``accepted``, ``duplicate="true"``, ``<body/>``, the form, and per target
    ``name``, ``reason``, ``opens``, ``updated``, ``<offer/>``, ``<reason/>``.
    """
    return _view_element(view, summary=False)


def requests_element(
    views: Sequence[RequestView], first_index: int, count: int, *, full: bool = False
) -> Element:
    """The result of a list query: one summary per request, then the XEP-0059 set::

        <requests xmlns="urn:orgchat:request:0">
          <request id="rabcdefghijklmnopqrst" state="open" created="2026-11-28T10:00:00Z"
                   expires="2026-12-01T10:00:00Z">
            <subject>Winter tyres 205/55 R16</subject>
            <target jid="tyres-north@biz.localhost" name="Tyres North" status="answered"
                    updated="2026-11-28T10:40:00Z"/>
          </request>
          <set xmlns="http://jabber.org/protocol/rsm">
            <first index="0">rabcdefghijklmnopqrst</first>
            <last>rabcdefghijklmnopqrst</last>
            <count>1</count>
          </set>
        </requests>

    Summaries leave out the body, the form, offers, decline reasons and
    ``duplicate``; with ``full`` (a query with ``full="true"``) each request
    is as request_element writes it. An empty page has only ``<count/>`` in
    its set.
    """
    el = Element(q("requests"))
    for view in views:
        el.append(_view_element(view, summary=not full))
    rsm = SubElement(el, RSM_SET)
    if views:
        SubElement(rsm, "{" + NS_RSM + "}first", {"index": str(first_index)}).text = views[0].id
        SubElement(rsm, "{" + NS_RSM + "}last").text = views[-1].id
    SubElement(rsm, "{" + NS_RSM + "}count").text = str(count)
    return el


def _view_element(view: RequestView, *, summary: bool) -> Element:
    attrib = {
        "id": view.id,
        "state": view.state,
        "created": stamp(view.created),
        "expires": stamp(view.expires),
    }
    if view.closed is not None:
        attrib["closed"] = stamp(view.closed)
    if view.accepted is not None:
        attrib["accepted"] = view.accepted
    if view.duplicate and not summary:
        attrib["duplicate"] = "true"
    el = Element(q("request"), attrib)
    SubElement(el, q("subject")).text = view.subject
    if not summary:
        if view.body is not None:
            SubElement(el, q("body")).text = view.body
        if view.form is not None:
            el.append(view.form.element("result"))
    for target in view.targets:
        tattrib = {"jid": target.jid}
        if target.name is not None:
            tattrib["name"] = target.name
        tattrib["status"] = target.status
        if target.reason is not None:
            tattrib["reason"] = target.reason
        if target.opens is not None:
            tattrib["opens"] = target.opens
        if target.updated is not None:
            tattrib["updated"] = stamp(target.updated)
        t = SubElement(el, q("target"), tattrib)
        if not summary:
            if target.offer is not None:
                SubElement(t, q("offer")).append(offer_form(target.offer).element("result"))
            if target.decline_reason is not None:
                SubElement(t, q("reason")).text = target.decline_reason
    return el


def parse_request_view(el: Element) -> RequestView:
    """Read a ``<request/>`` of a create, get or close result (client code, tests)."""
    expect(el, NS, "request")
    subject: str | None = None
    body: str | None = None
    form: Form | None = None
    targets: list[TargetView] = []
    for child in el:
        if child.tag == q("subject"):
            subject = leaf_text(child)
        elif child.tag == q("body"):
            body = leaf_text(child)
        elif child.tag == DATA_X:
            form = read_form(child, max_value=MAX_VALUE)
        elif child.tag == q("target"):
            targets.append(_parse_target(child))
        else:
            raise PayloadError(f"unexpected {describe(child)} in <request/>")
    if subject is None:
        raise PayloadError("<subject/> is missing")
    closed = el.get("closed")
    return RequestView(
        id=request_id(el.get("id"), "the id attribute"),
        state=required_attr(el, "state"),
        subject=subject,
        created=parse_stamp(required_attr(el, "created")),
        expires=parse_stamp(required_attr(el, "expires")),
        targets=tuple(targets),
        body=body,
        form=form,
        closed=None if closed is None else parse_stamp(closed),
        accepted=el.get("accepted"),
        duplicate=boolean(el.get("duplicate"), "duplicate", default=False),
    )


def _parse_target(el: Element) -> TargetView:
    offer: Offer | None = None
    decline_reason: str | None = None
    for child in el:
        if child.tag == q("offer"):
            offer = parse_offer(child)
        elif child.tag == q("reason"):
            decline_reason = leaf_text(child)
        else:
            raise PayloadError(f"unexpected {describe(child)} in <target/>")
    updated = el.get("updated")
    return TargetView(
        jid=required_attr(el, "jid"),
        status=required_attr(el, "status"),
        name=el.get("name"),
        reason=el.get("reason"),
        opens=el.get("opens"),
        updated=None if updated is None else parse_stamp(updated),
        offer=offer,
        decline_reason=decline_reason,
    )


@dataclass(frozen=True)
class RequestList:
    """A list result as read by parse_requests."""

    views: tuple[RequestView, ...]
    first_index: int | None  #: None for an empty page
    count: int


def parse_requests(el: Element) -> RequestList:
    """Read a list result ``<requests/>`` (client code, tests)."""
    expect(el, NS, "requests")
    views: list[RequestView] = []
    first_index: int | None = None
    count: int | None = None
    for child in el:
        if child.tag == q("request"):
            views.append(parse_request_view(child))
        elif child.tag == RSM_SET:
            first = child.find("{" + NS_RSM + "}first")
            if first is not None:
                first_index = integer(first.get("index") or "", "the result set index")
            count_el = child.find("{" + NS_RSM + "}count")
            if count_el is not None:
                count = integer(leaf_text(count_el), "the result set count")
        else:
            raise PayloadError(f"unexpected {describe(child)} in <requests/>")
    if count is None:
        raise PayloadError("the result set has no count")
    return RequestList(tuple(views), first_index, count)
