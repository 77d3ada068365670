"""A company's <offer/> and <decline/>.

Part of ``urn:orgchat:request:0``; see :mod:`extensions.request.stanza`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from xml.etree.ElementTree import Element, SubElement

from extensions.forms import Field, Form, read_form
from extensions.request.stanza import (
    AVAILABILITY,
    DATA_X,
    FORM_OFFER,
    MAX_FIELDS,
    MAX_PRICE,
    MAX_REASON,
    MAX_VALUE,
    NS,
    describe,
    expect,
    leaf_text,
    once,
    q,
)
from extensions.xml import N_, PayloadError, Write, english, show

_OFFER_VARS = ("price", "currency", "availability", "valid-until")
_PRICE = re.compile(r"[0-9]{1,20}(\.[0-9]{1,20})?")
_CURRENCY = re.compile(r"[A-Z]{3}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class Offer:
    price: Decimal  #: >= 0, 2 decimals, < 10^12
    currency: str  #: ISO 4217 shape: three upper-case letters
    availability: str  #: one of AVAILABILITY
    valid_until: dt.date | None = None


def parse_offer(el: Element) -> Offer:
    """Parse ``<offer xmlns="urn:orgchat:request:0"/>`` and its #offer form (submit or result).

    A ``request`` attribute (on the offers customers receive) is not read here.
    """
    expect(el, NS, "offer")
    x: Element | None = None
    for child in el:
        if child.tag != DATA_X:
            raise PayloadError(f"unexpected {describe(child)} in <offer/>")
        once(x, child)
        x = child
    if x is None:
        raise PayloadError("the offer has no data form")
    return offer_from_form(read_form(x, FORM_OFFER, max_fields=MAX_FIELDS, max_value=MAX_VALUE))


def offer_form(offer: Offer) -> Form:
    """The #offer form of an offer; the price with two decimals."""
    fields = [
        Field("price", (price_text(offer.price),)),
        Field("currency", (offer.currency,)),
        Field("availability", (offer.availability,)),
    ]
    if offer.valid_until is not None:
        fields.append(Field("valid-until", (offer.valid_until.isoformat(),)))
    return Form(tuple(fields), form_type=FORM_OFFER)


def offer_from_form(form: Form) -> Offer:
    """Validate an #offer form: price, currency, availability required; valid-until optional."""
    if form.form_type != FORM_OFFER:
        raise PayloadError(f"the offer form's FORM_TYPE must be {FORM_OFFER}")
    values: dict[str, str] = {}
    for field in form.fields:
        if field.var is None or field.var not in _OFFER_VARS:
            raise PayloadError(f"unknown offer field {show(field.var or '')}")
        if len(field.values) != 1:
            raise PayloadError(f"the offer field {field.var} needs exactly one value")
        values[field.var] = field.values[0].strip()
    for required in ("price", "currency", "availability"):
        if required not in values:
            raise PayloadError(N_("The offer has no {field}"), field=required)
    price = _parse_price(values["price"])
    currency = values["currency"]
    if not _CURRENCY.fullmatch(currency):
        raise PayloadError(N_("The offer's currency must be three upper-case letters, such as EUR"))
    availability = values["availability"]
    if availability not in AVAILABILITY:
        raise PayloadError(N_("The offer's availability must be in-stock, to-order or unavailable"))
    valid_until: dt.date | None = None
    if "valid-until" in values:
        valid_until = _parse_date(values["valid-until"])
    return Offer(price, currency, availability, valid_until)


def _parse_price(text: str) -> Decimal:
    if not _PRICE.fullmatch(text):
        raise PayloadError(N_("The offer's price must be a number such as 320.00"))
    try:
        price = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern only lets numbers through
        raise PayloadError(N_("The offer's price must be a number such as 320.00")) from None
    if price != price.quantize(_CENT):
        raise PayloadError(N_("The offer's price has more than 2 decimals"))
    if price >= MAX_PRICE:
        raise PayloadError(N_("The offer's price is too large"))
    return price.quantize(_CENT)


def _parse_date(text: str) -> dt.date:
    if _DATE.fullmatch(text):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            pass
    raise PayloadError(N_("The offer's valid-until must be a date such as 2026-12-05"))


def price_text(price: Decimal) -> str:
    return format(price.quantize(_CENT), "f")


def offer_element(offer: Offer) -> Element:
    """The ``<offer/>`` an agent's desk software sends.

    No ``valid-until`` field when ``offer.valid_until`` is None::

        <offer xmlns="urn:orgchat:request:0">
          <x xmlns="jabber:x:data" type="submit">
            <field var="FORM_TYPE" type="hidden"><value>urn:orgchat:request:0#offer</value></field>
            <field var="price"><value>320.00</value></field>
            <field var="currency"><value>EUR</value></field>
            <field var="availability"><value>in-stock</value></field>
            <field var="valid-until"><value>2026-12-05</value></field>
          </x>
        </offer>
    """
    el = Element(q("offer"))
    el.append(offer_form(offer).element("submit"))
    return el


#: Each availability (wire code) as people say it.
AVAILABILITY_TEXT = {
    "in-stock": N_("in stock"),
    "to-order": N_("to order"),
    "unavailable": N_("unavailable"),
}


def offer_text(offer: Offer, write: Write = english) -> str:
    """The body written for an offer sent without one:
    ``Offer: 320.00 EUR, in stock, valid until 2026-12-05``."""
    price = price_text(offer.price)
    availability = write(AVAILABILITY_TEXT[offer.availability])
    if offer.valid_until is None:
        return write(
            N_("Offer: {price} {currency}, {availability}"),
            price=price,
            currency=offer.currency,
            availability=availability,
        )
    return write(
        N_("Offer: {price} {currency}, {availability}, valid until {date}"),
        price=price,
        currency=offer.currency,
        availability=availability,
        date=offer.valid_until.isoformat(),
    )


def parse_decline(el: Element) -> str | None:
    """Parse ``<decline xmlns="urn:orgchat:request:0"><reason>...</reason></decline>``: the reason.

    The reason is optional (None when missing or blank), at most 500
    characters after stripping. A ``request`` attribute is not read here.
    """
    expect(el, NS, "decline")
    reason: str | None = None
    seen: Element | None = None
    for child in el:
        if child.tag != q("reason"):
            raise PayloadError(f"unexpected {describe(child)} in <decline/>")
        once(seen, child)
        seen = child
        reason = leaf_text(child).strip() or None
        if reason is not None and len(reason) > MAX_REASON:
            raise PayloadError(f"the reason is longer than {MAX_REASON} characters")
    return reason


def decline_element(reason: str | None) -> Element:
    """The ``<decline/>`` an agent's desk software sends.

    Without ``<reason/>`` when ``reason`` is None::

        <decline xmlns="urn:orgchat:request:0"><reason>Out of stock</reason></decline>
    """
    el = Element(q("decline"))
    if reason is not None:
        SubElement(el, q("reason")).text = reason
    return el


def decline_text(reason: str | None, write: Write = english) -> str:
    """The body for a decline sent without one: ``Declined: Out of stock`` / ``Declined.``"""
    return write(N_("Declined: {reason}"), reason=reason) if reason else write(N_("Declined."))
