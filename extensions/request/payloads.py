"""What travels in messages: the fan-out, replies, offers, declines, closes, statuses.

Part of ``urn:orgchat:request:0``; see :mod:`extensions.request.stanza`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement

from extensions.forms import Field, Form, read_form
from extensions.request.offers import Offer, decline_element, offer_form
from extensions.request.stanza import (
    DATA_X,
    MAX_VALUE,
    NS,
    describe,
    expect,
    leaf_text,
    no_children,
    parse_stamp,
    q,
    request_id,
    required_attr,
    stamp,
)
from extensions.xml import (
    N_,
    PayloadError,
    Write,
    boolean,
    english,
    escape_attr,
    escape_text,
    to_xml,
)


@dataclass(frozen=True)
class Fanout:
    """The payload of a fan-out message, as read by parse_fanout."""

    request_id: str
    subject: str
    expires: dt.datetime
    form: Form | None


def fanout_payload(request_id: str, subject: str, expires: dt.datetime, form: Form | None) -> str:
    """The payload of the message each company's agents receive.

    Rendered on one line, without the indentation shown here; the form only
    when given. No other company is named::

        <request xmlns="urn:orgchat:request:0" id="rabcdefghijklmnopqrst"
                 expires="2026-12-01T10:00:00Z">
          <subject>Winter tyres 205/55 R16</subject>
          <x xmlns="jabber:x:data" type="result">
            <field var="FORM_TYPE" type="hidden"><value>urn:orgchat:request:0#fields</value></field>
            <field var="tyre-size" label="Tyre size"><value>205/55 R16</value></field>
            <field var="quantity" label="Quantity"><value>4</value></field>
          </x>
        </request>
    """
    form_xml = form.xml("result") if form is not None else ""
    return (
        f'<request xmlns="{NS}" id="{escape_attr(request_id)}" expires="{stamp(expires)}">'
        f"<subject>{escape_text(subject)}</subject>{form_xml}</request>"
    )


def parse_fanout(el: Element) -> Fanout:
    """Read a fan-out payload (desk software, tests)."""
    expect(el, NS, "request")
    subject: str | None = None
    form: Form | None = None
    for child in el:
        if child.tag == q("subject"):
            subject = leaf_text(child)
        elif child.tag == DATA_X:
            form = read_form(child, max_value=MAX_VALUE)
        else:
            raise PayloadError(f"unexpected {describe(child)} in <request/>")
    if subject is None:
        raise PayloadError("<subject/> is missing")
    return Fanout(
        request_id(el.get("id"), "the id attribute"),
        subject,
        parse_stamp(required_attr(el, "expires")),
        form,
    )


def fanout_text(subject: str, body: str, form: Form | None, write: Write = english) -> str:
    """The plain-text body of the fan-out message::

        Request: Winter tyres 205/55 R16

        How much for four, fitted, this week?

        Tyre size: 205/55 R16
        Quantity: 4

        (Asked of several companies. Reply here to answer; your reply reaches only this customer.)

    One line per field with values (label, else var; several values joined
    by ", ", by new lines for text-multi; booleans as yes/no); hidden fields
    are left out, and so is the whole paragraph when no field is shown. The
    fixed texts are written by ``write`` (English by default).
    """
    parts = [write(N_("Request: {subject}"), subject=subject), body]
    lines = [line for f in form.fields if (line := _field_line(f, write))] if form else []
    if lines:
        parts.append("\n".join(lines))
    parts.append(
        write(
            N_(
                "(Asked of several companies. Reply here to answer; your reply reaches only "
                "this customer.)"
            )
        )
    )
    return "\n\n".join(parts)


def _field_line(field: Field, write: Write) -> str | None:
    if field.type == "hidden" or not field.values:
        return None
    values: tuple[str, ...] = field.values
    if field.type == "boolean":
        yes, no = write(N_("yes")), write(N_("no"))
        values = tuple(
            {"1": yes, "true": yes, "0": no, "false": no}.get(v.strip(), v) for v in values
        )
    joined = ("\n" if field.type == "text-multi" else ", ").join(values)
    return f"{field.label or field.var}: {joined}"


def reply_payload(request_id: str) -> str:
    """The payload of a company's plain reply to the customer::

    <reply xmlns="urn:orgchat:request:0" request="rabcdefghijklmnopqrst"/>
    """
    return to_xml(Element(q("reply"), {"request": request_id}))


def offer_payload(request_id: str, offer: Offer) -> str:
    """The payload of a company's offer to the customer.

    Rendered on one line, without the indentation shown here::

        <offer xmlns="urn:orgchat:request:0" request="rabcdefghijklmnopqrst">
          <x xmlns="jabber:x:data" type="result">
            <field var="FORM_TYPE" type="hidden"><value>urn:orgchat:request:0#offer</value></field>
            <field var="price"><value>320.00</value></field>
            <field var="currency"><value>EUR</value></field>
            <field var="availability"><value>in-stock</value></field>
            <field var="valid-until"><value>2026-12-05</value></field>
          </x>
        </offer>
    """
    return (
        f'<offer xmlns="{NS}" request="{escape_attr(request_id)}">'
        f"{offer_form(offer).xml('result')}</offer>"
    )


def decline_payload(request_id: str, reason: str | None) -> str:
    """The payload of a company's decline to the customer.

    Rendered on one line, without the indentation shown here; no
    ``<reason/>`` when ``reason`` is None::

        <decline xmlns="urn:orgchat:request:0" request="rabcdefghijklmnopqrst">
          <reason>Out of stock</reason>
        </decline>
    """
    el = decline_element(reason)
    el.set("request", request_id)
    return to_xml(el)


def closed_payload(request_id: str, accepted: bool) -> str:
    """The payload of the close notice posted into each target's conversation.

    ``accepted="false"`` when this target's offer was not accepted::

        <closed xmlns="urn:orgchat:request:0" request="rabcdefghijklmnopqrst" accepted="true"/>
    """
    return to_xml(
        Element(q("closed"), {"request": request_id, "accepted": "true" if accepted else "false"})
    )


def parse_closed(el: Element) -> bool:
    """Read a ``<closed/>`` notice: True if this company's offer was accepted."""
    expect(el, NS, "closed")
    no_children(el)
    return boolean(required_attr(el, "accepted"), "accepted", default=False)


def closed_text(accepted: bool, other_accepted: bool, write: Write = english) -> str:
    """The body of a close notice, for a company whose offer was accepted, for the
    others when another offer was accepted, or when none was.

    The notice is posted on the customer's behalf, so it is written as an
    action of theirs (XEP-0245, ``/me``): clients show it as an event in the
    conversation ("* Anna closed this request"), not as words the customer
    typed."""
    if accepted:
        return write(N_("/me closed this request and accepted your offer."))
    if other_accepted:
        return write(N_("/me closed this request and chose another company's offer."))
    return write(N_("/me closed this request."))


def payload_request(el: Element) -> str:
    """The ``request`` attribute (a request id) of a reply, offer, decline, closed or status."""
    return request_id(el.get("request"), "the request attribute")


def status_message(
    frm: str, to: str, msg_id: str, request_id: str, targets: Sequence[tuple[str, str]]
) -> str:
    """The body-less headline telling the customer of status changes.

    ``targets`` are (company JID, status) pairs, in the order given. Rendered
    on one line, without the indentation shown here::

        <message type="headline" from="biz.localhost" to="anna@localhost" id="n1">
          <status xmlns="urn:orgchat:request:0" request="rabcdefghijklmnopqrst">
            <target jid="tyres-north@biz.localhost" status="seen"/>
            <target jid="tyres-south@biz.localhost" status="delivered"/>
          </status>
        </message>
    """
    el = Element(q("status"), {"request": request_id})
    for jid, status in targets:
        SubElement(el, q("target"), {"jid": jid, "status": status})
    return (
        f'<message type="headline" from="{escape_attr(frm)}" to="{escape_attr(to)}" '
        f'id="{escape_attr(msg_id)}">{to_xml(el)}</message>'
    )


def parse_status(el: Element) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Read a ``<status/>`` notification: the request id and (JID, status) pairs."""
    expect(el, NS, "status")
    targets: list[tuple[str, str]] = []
    for child in el:
        if child.tag != q("target"):
            raise PayloadError(f"unexpected {describe(child)} in <status/>")
        targets.append((required_attr(child, "jid"), required_attr(child, "status")))
    return payload_request(el), tuple(targets)
