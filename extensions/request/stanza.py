"""Requests to several companies: the stanzas of ``urn:orgchat:request:0``.

A customer asks one question (a subject, a body and optional structured
fields) of several companies at once, by naming them or by a directory
search; each company answers in its own conversation with the customer, with
a plain reply, a structured offer or a decline; the customer follows the
request's status and closes it, possibly accepting one offer. The wire
protocol is documented in docs/protocol.md ("Requests to several
companies") and described by the XML Schema docs/request.xsd.

XEPs used:

* XEP-0004 data forms: the customer's structured fields (FORM_TYPE
  ``urn:orgchat:request:0#fields``) and a company's offer (FORM_TYPE
  ``urn:orgchat:request:0#offer``), with XEP-0068 FORM_TYPE fields;
* XEP-0059 result set management: paging the customer's list of requests;
* XEP-0201 threads: every message of a request carries ``<thread/>`` = the
  request's id.

The namespace is ours because no XEP covers multi-recipient business
requests (a question fanned out to several organisations, with per-recipient
delivery status, offers and declines, and a close that accepts one offer).

This module is pure stanza code: it parses ElementTree elements (raising
PayloadError, whose text is shown to the user, for anything malformed),
builds elements for IQ payloads and renders message payloads as strings. It
knows nothing of storage or routing. Timestamps are XEP-0082 UTC with
seconds precision (``2026-11-28T10:00:00Z``); datetimes given to builders
must be timezone-aware.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from xml.etree.ElementTree import Element, ParseError, SubElement, fromstring

from slixmpp.jid import JID

NS = "urn:orgchat:request:0"
FORM_FIELDS = NS + "#fields"
FORM_OFFER = NS + "#offer"
NS_DATA = "jabber:x:data"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_XML = "http://www.w3.org/XML/1998/namespace"

#: Request states, target statuses and refusal reasons, as on the wire.
STATES = ("open", "closed", "expired")
TARGET_STATUSES = ("sent", "delivered", "seen", "answered", "declined", "expired", "refused")
REFUSAL_REASONS = ("unknown", "closed", "opted-out", "over-limit")
AVAILABILITY = ("in-stock", "to-order", "unavailable")

MAX_SUBJECT = 200  #: characters, after stripping
MAX_COMPANIES = 100  #: <company/> elements parsed; the component has its own lower limit
MAX_SEARCH_TEXT = 200  #: characters of a search attribute (category, city, text)
MAX_SEARCH_RESULTS = 100  #: upper bound of <search max="..."/>
MAX_FIELDS = 20  #: data form fields besides FORM_TYPE
MAX_VALUE = 500  #: characters of a field value (also of a var or a label)
MAX_REASON = 500  #: characters of a decline reason
LIST_DEFAULT = 20  #: requests per list page without RSM <max/>
LIST_MAX = 100  #: largest list page, whatever the client asks
MAX_PRICE = Decimal(10) ** 12  #: prices are below this

REQUEST_ID_CHARS = "abcdefghijklmnopqrstuvwxyz234567"
_REQUEST_ID = re.compile(r"r[a-z2-7]{20}")

FIELD_TYPES = frozenset(
    {
        "boolean",
        "fixed",
        "hidden",
        "jid-multi",
        "jid-single",
        "list-multi",
        "list-single",
        "text-multi",
        "text-private",
        "text-single",
    }
)
_MULTI_TYPES = frozenset({"jid-multi", "list-multi", "text-multi"})
_OFFER_VARS = ("price", "currency", "availability", "valid-until")

_DATA_X = "{" + NS_DATA + "}x"
_DATA_FIELD = "{" + NS_DATA + "}field"
_DATA_VALUE = "{" + NS_DATA + "}value"
_DATA_IGNORED_IN_X = frozenset({"{" + NS_DATA + "}title", "{" + NS_DATA + "}instructions"})
_DATA_IGNORED_IN_FIELD = frozenset(
    {"{" + NS_DATA + "}desc", "{" + NS_DATA + "}required", "{" + NS_DATA + "}option"}
)
_RSM_SET = "{" + NS_RSM + "}set"

_INTEGER = re.compile(r"\+?[0-9]{1,30}")
_PRICE = re.compile(r"[0-9]{1,20}(\.[0-9]{1,20})?")
_CURRENCY = re.compile(r"[A-Z]{3}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_CENT = Decimal("0.01")


class PayloadError(ValueError):
    """A malformed payload; str(exc) is a short human-readable reason.

    The reason is sent to the user as the error text; it starts with a
    capital letter and has no final full stop.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason[:1].upper() + reason[1:])


def _q(name: str) -> str:
    return "{" + NS + "}" + name


# -- data forms (XEP-0004) ------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One data form field; ``values`` in document order."""

    var: str
    values: tuple[str, ...] = ()
    label: str | None = None
    type: str | None = None


@dataclass(frozen=True)
class Form:
    """A data form with a FORM_TYPE (XEP-0068); FORM_TYPE is not in ``fields``."""

    form_type: str
    fields: tuple[Field, ...]


def parse_form(el: Element, form_type: str, *, max_fields: int = MAX_FIELDS) -> Form:
    """Parse a XEP-0004 ``<x xmlns="jabber:x:data"/>`` of type submit or result.

    Its FORM_TYPE must be ``form_type``; at most ``max_fields`` fields besides
    FORM_TYPE, each with a non-empty, unique ``var`` and values of at most
    500 characters. ``<title/>``, ``<instructions/>`` and the ``<desc/>``,
    ``<required/>`` and ``<option/>`` of fields are ignored.
    """
    form = _read_form(el, max_fields)
    if form.form_type != form_type:
        raise PayloadError(f"the data form's FORM_TYPE must be {form_type}")
    return form


def _read_form(el: Element, max_fields: int | None) -> Form:
    _expect(el, NS_DATA, "x")
    if el.get("type") not in ("submit", "result"):
        raise PayloadError("the data form's type must be submit or result")
    form_type: str | None = None
    fields: list[Field] = []
    seen: set[str] = set()
    for child in el:
        if child.tag in _DATA_IGNORED_IN_X:
            continue
        if child.tag != _DATA_FIELD:
            raise PayloadError(f"unexpected {_describe(child)} in the data form")
        field = _read_field(child)
        if field.var in seen:
            raise PayloadError(f"the data form has the field {_show(field.var)} twice")
        seen.add(field.var)
        if field.var == "FORM_TYPE":
            if len(field.values) != 1:
                raise PayloadError("the data form's FORM_TYPE needs exactly one value")
            form_type = field.values[0]
            continue
        fields.append(field)
        if max_fields is not None and len(fields) > max_fields:
            raise PayloadError(f"the data form has more than {max_fields} fields")
    if form_type is None:
        raise PayloadError("the data form has no FORM_TYPE")
    return Form(form_type, tuple(fields))


def _read_field(el: Element) -> Field:
    var = el.get("var")
    if not var:
        raise PayloadError("every field of the data form needs a var")
    if len(var) > MAX_VALUE:
        raise PayloadError(f"a field var is longer than {MAX_VALUE} characters")
    ftype = el.get("type")
    if ftype is not None and ftype not in FIELD_TYPES:
        raise PayloadError(f"the field {_show(var)} has an unknown type {_show(ftype)}")
    label = el.get("label")
    if label is not None and len(label) > MAX_VALUE:
        raise PayloadError(
            f"the label of the field {_show(var)} is longer than {MAX_VALUE} characters"
        )
    values: list[str] = []
    for child in el:
        if child.tag in _DATA_IGNORED_IN_FIELD:
            continue
        if child.tag != _DATA_VALUE:
            raise PayloadError(f"unexpected {_describe(child)} in the field {_show(var)}")
        value = _leaf_text(child)
        if len(value) > MAX_VALUE:
            raise PayloadError(
                f"a value of the field {_show(var)} is longer than {MAX_VALUE} characters"
            )
        values.append(value)
    if len(values) > 1 and ftype is not None and ftype not in _MULTI_TYPES:
        raise PayloadError(f"the field {_show(var)} has several values")
    return Field(var, tuple(values), label, ftype)


def form_element(form: Form, type: str = "result") -> Element:
    """The XEP-0004 form, FORM_TYPE first. For ``offer_form(...)`` and type result::

        <x xmlns="jabber:x:data" type="result">
          <field var="FORM_TYPE" type="hidden"><value>urn:orgchat:request:0#offer</value></field>
          <field var="price"><value>320.00</value></field>
          <field var="currency"><value>EUR</value></field>
          <field var="availability"><value>in-stock</value></field>
          <field var="valid-until"><value>2026-12-05</value></field>
        </x>

    A field's ``type`` and ``label`` attributes are written when set.
    """
    if type not in ("submit", "result"):
        raise ValueError(f"data form type must be submit or result, not {type!r}")
    x = Element(_DATA_X, {"type": type})
    for field in (Field("FORM_TYPE", (form.form_type,), type="hidden"), *form.fields):
        attrib = {"var": field.var}
        if field.type is not None:
            attrib["type"] = field.type
        if field.label is not None:
            attrib["label"] = field.label
        f = SubElement(x, _DATA_FIELD, attrib)
        for value in field.values:
            SubElement(f, _DATA_VALUE).text = value
    return x


def form_to_xml(form: Form) -> str:
    """The form as an opaque string for storage (form_from_xml reads it back).

    ``<x xmlns="jabber:x:data" type="result"><field var="FORM_TYPE" type="hidden">``
    ``<value>...</value></field>...</x>``, without indentation.
    """
    return to_xml(form_element(form, "result"))


def form_from_xml(text: str) -> Form:
    """Read back what form_to_xml wrote: ``form_from_xml(form_to_xml(f)) == f``."""
    try:
        el = fromstring(text)
    except ParseError as exc:
        raise PayloadError(f"stored form is not XML: {exc}") from None
    return _read_form(el, None)


# -- create ---------------------------------------------------------------------


@dataclass(frozen=True)
class Search:
    """Companies chosen by a directory search (at least one criterion)."""

    category: str | None
    city: str | None
    text: str | None
    max: int | None


@dataclass(frozen=True)
class Create:
    """A customer's new request. Exactly one of ``companies`` and ``search`` is given."""

    subject: str  #: stripped
    body: str  #: stripped
    companies: tuple[str, ...]  #: normalised bare JIDs, duplicates removed, order kept
    search: Search | None
    form: Form | None  #: the #fields form
    include_closed: bool


def parse_create(el: Element) -> Create:
    """Parse ``<create xmlns="urn:orgchat:request:0"/>`` (the payload of an IQ set)."""
    _expect(el, NS, "create")
    include_closed = _boolean(el.get("include-closed"), "include-closed", default=False)
    subject: str | None = None
    body: str | None = None
    companies: list[str] = []
    n_companies = 0
    search: Search | None = None
    form: Form | None = None
    for child in el:
        if child.tag == _q("subject"):
            _once(subject, child)
            subject = _leaf_text(child).strip()
            if not subject:
                raise PayloadError("the subject is empty")
            if len(subject) > MAX_SUBJECT:
                raise PayloadError(f"the subject is longer than {MAX_SUBJECT} characters")
        elif child.tag == _q("body"):
            _once(body, child)
            body = _leaf_text(child).strip()
            if not body:
                raise PayloadError("the body is empty")
        elif child.tag == _q("company"):
            n_companies += 1
            if n_companies > MAX_COMPANIES:
                raise PayloadError(f"more than {MAX_COMPANIES} companies")
            _no_children(child)
            jid = _bare_jid(child.get("jid"), "the jid of a <company/>")
            if jid not in companies:
                companies.append(jid)
        elif child.tag == _q("search"):
            _once(search, child)
            search = _parse_search(child)
        elif child.tag == _DATA_X:
            _once(form, child)
            if child.get("type") != "submit":
                raise PayloadError("the fields form must be of type submit")
            form = parse_form(child, FORM_FIELDS)
        else:
            raise PayloadError(f"unexpected {_describe(child)} in <create/>")
    if subject is None:
        raise PayloadError("<subject/> is missing")
    if body is None:
        raise PayloadError("<body/> is missing")
    if companies and search is not None:
        raise PayloadError("give either <company/> elements or a <search/>, not both")
    if not companies and search is None:
        raise PayloadError("name at least one <company/> or give a <search/>")
    return Create(subject, body, tuple(companies), search, form, include_closed)


def _parse_search(el: Element) -> Search:
    _no_children(el)

    def criterion(name: str) -> str | None:
        value = el.get(name)
        if value is None:
            return None
        value = value.strip()
        if len(value) > MAX_SEARCH_TEXT:
            raise PayloadError(f"the search {name} is longer than {MAX_SEARCH_TEXT} characters")
        return value or None

    category, city, text = criterion("category"), criterion("city"), criterion("text")
    if category is None and city is None and text is None:
        raise PayloadError("a search needs at least one of category, city or text")
    limit: int | None = None
    raw = el.get("max")
    if raw is not None:
        limit = _integer(raw, "the search max")
        if not 1 <= limit <= MAX_SEARCH_RESULTS:
            raise PayloadError(f"the search max must be between 1 and {MAX_SEARCH_RESULTS}")
    return Search(category, city, text, limit)


def create_element(create: Create) -> Element:
    """The ``<create/>`` a client sends (for tests and client code)::

        <create xmlns="urn:orgchat:request:0" include-closed="false">
          <subject>Winter tyres 205/55 R16</subject>
          <body>How much for four, fitted, this week?</body>
          <company jid="tyres-north@biz.localhost"/>
          <company jid="tyres-south@biz.localhost"/>
          <x xmlns="jabber:x:data" type="submit">
            <field var="FORM_TYPE" type="hidden"><value>urn:orgchat:request:0#fields</value></field>
            <field var="tyre-size" label="Tyre size"><value>205/55 R16</value></field>
            <field var="quantity" label="Quantity"><value>4</value></field>
          </x>
        </create>

    With a search instead of companies:
    ``<search category="tyres" city="Novosibirsk" text="winter" max="5"/>``
    (unset criteria left out).
    """
    el = Element(_q("create"), {"include-closed": "true" if create.include_closed else "false"})
    SubElement(el, _q("subject")).text = create.subject
    SubElement(el, _q("body")).text = create.body
    for jid in create.companies:
        SubElement(el, _q("company"), {"jid": jid})
    if create.search is not None:
        s = create.search
        attrib = {
            name: value
            for name, value in (("category", s.category), ("city", s.city), ("text", s.text))
            if value is not None
        }
        if s.max is not None:
            attrib["max"] = str(s.max)
        SubElement(el, _q("search"), attrib)
    if create.form is not None:
        el.append(form_element(create.form, "submit"))
    return el


# -- close, get, list -----------------------------------------------------------


@dataclass(frozen=True)
class Close:
    request: str
    accept: str | None  #: the company whose offer is accepted (bare JID)


def parse_close(el: Element) -> Close:
    """Parse ``<close xmlns="urn:orgchat:request:0" request="r..." accept="jid"/>`` (IQ set)."""
    _expect(el, NS, "close")
    _no_children(el)
    request = _request_id(el.get("request"), "the request attribute")
    accept = el.get("accept")
    return Close(request, None if accept is None else _bare_jid(accept, "the accept attribute"))


def close_element(close: Close) -> Element:
    """The ``<close/>`` a client sends (``accept`` only when set)::

    <close xmlns="urn:orgchat:request:0" request="rabcdefghijklmnopqrst"
           accept="tyres-north@biz.localhost"/>
    """
    attrib = {"request": close.request}
    if close.accept is not None:
        attrib["accept"] = close.accept
    return Element(_q("close"), attrib)


def parse_get(el: Element) -> str:
    """Parse ``<request xmlns="urn:orgchat:request:0" id="r..."/>`` of an IQ get: the id."""
    _expect(el, NS, "request")
    _no_children(el)
    return _request_id(el.get("id"), "the id attribute")


def get_element(request_id: str) -> Element:
    """The IQ get payload asking for one request::

    <request xmlns="urn:orgchat:request:0" id="rabcdefghijklmnopqrst"/>
    """
    return Element(_q("request"), {"id": request_id})


@dataclass(frozen=True)
class ListQuery:
    state: str | None
    max: int
    after: str | None
    before: str | None  #: "" asks for the last page


def parse_list(el: Element) -> ListQuery:
    """Parse ``<requests xmlns="urn:orgchat:request:0" state="open"/>`` (IQ get).

    An optional XEP-0059 ``<set/>`` gives ``<max/>`` (default 20, capped at
    100), ``<after/>`` or ``<before/>`` (request ids; ``<before/>`` empty for
    the last page). ``<index/>`` is not supported.
    """
    _expect(el, NS, "requests")
    state = el.get("state")
    if state is not None and state not in STATES:
        raise PayloadError("the state must be open, closed or expired")
    limit = LIST_DEFAULT
    after: str | None = None
    before: str | None = None
    rsm: Element | None = None
    for child in el:
        if child.tag != _RSM_SET:
            raise PayloadError(f"unexpected {_describe(child)} in <requests/>")
        _once(rsm, child)
        rsm = child
    if rsm is not None:
        seen: set[str] = set()
        for child in rsm:
            if child.tag in seen:
                raise PayloadError(f"{_describe(child)} appears twice in the result set")
            seen.add(child.tag)
            if child.tag == "{" + NS_RSM + "}max":
                limit = _integer(_leaf_text(child), "the result set max")
            elif child.tag == "{" + NS_RSM + "}after":
                after = _request_id(_leaf_text(child), "the result set after")
            elif child.tag == "{" + NS_RSM + "}before":
                text = _leaf_text(child)
                before = _request_id(text, "the result set before") if text else ""
            elif child.tag == "{" + NS_RSM + "}index":
                raise PayloadError("result set index is not supported, use after or before")
            else:
                raise PayloadError(f"unexpected {_describe(child)} in the result set")
        if after is not None and before is not None:
            raise PayloadError("give either after or before in the result set, not both")
    return ListQuery(state, min(limit, LIST_MAX), after, before)


def list_element(query: ListQuery) -> Element:
    """The list query a client sends::

        <requests xmlns="urn:orgchat:request:0" state="open">
          <set xmlns="http://jabber.org/protocol/rsm"><max>10</max></set>
        </requests>

    (``state`` when set; ``<after/>``, ``<before/>`` when set, ``<before/>``
    empty for "").
    """
    el = Element(_q("requests"), {} if query.state is None else {"state": query.state})
    rsm = SubElement(el, _RSM_SET)
    SubElement(rsm, "{" + NS_RSM + "}max").text = str(query.max)
    if query.after is not None:
        SubElement(rsm, "{" + NS_RSM + "}after").text = query.after
    if query.before is not None:
        SubElement(rsm, "{" + NS_RSM + "}before").text = query.before or None
    return el


# -- offers and declines --------------------------------------------------------


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
    _expect(el, NS, "offer")
    x: Element | None = None
    for child in el:
        if child.tag != _DATA_X:
            raise PayloadError(f"unexpected {_describe(child)} in <offer/>")
        _once(x, child)
        x = child
    if x is None:
        raise PayloadError("the offer has no data form")
    return offer_from_form(parse_form(x, FORM_OFFER))


def offer_form(offer: Offer) -> Form:
    """The #offer form of an offer; the price with two decimals."""
    fields = [
        Field("price", (_price_text(offer.price),)),
        Field("currency", (offer.currency,)),
        Field("availability", (offer.availability,)),
    ]
    if offer.valid_until is not None:
        fields.append(Field("valid-until", (offer.valid_until.isoformat(),)))
    return Form(FORM_OFFER, tuple(fields))


def offer_from_form(form: Form) -> Offer:
    """Validate an #offer form: price, currency, availability required; valid-until optional."""
    if form.form_type != FORM_OFFER:
        raise PayloadError(f"the offer form's FORM_TYPE must be {FORM_OFFER}")
    values: dict[str, str] = {}
    for field in form.fields:
        if field.var not in _OFFER_VARS:
            raise PayloadError(f"unknown offer field {_show(field.var)}")
        if len(field.values) != 1:
            raise PayloadError(f"the offer field {field.var} needs exactly one value")
        values[field.var] = field.values[0].strip()
    for required in ("price", "currency", "availability"):
        if required not in values:
            raise PayloadError(f"the offer has no {required}")
    price = _parse_price(values["price"])
    currency = values["currency"]
    if not _CURRENCY.fullmatch(currency):
        raise PayloadError("the offer's currency must be three upper-case letters, such as EUR")
    availability = values["availability"]
    if availability not in AVAILABILITY:
        raise PayloadError("the offer's availability must be in-stock, to-order or unavailable")
    valid_until: dt.date | None = None
    if "valid-until" in values:
        valid_until = _parse_date(values["valid-until"])
    return Offer(price, currency, availability, valid_until)


def _parse_price(text: str) -> Decimal:
    if not _PRICE.fullmatch(text):
        raise PayloadError("the offer's price must be a number such as 320.00")
    try:
        price = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern only lets numbers through
        raise PayloadError("the offer's price must be a number such as 320.00") from None
    if price != price.quantize(_CENT):
        raise PayloadError("the offer's price has more than 2 decimals")
    if price >= MAX_PRICE:
        raise PayloadError("the offer's price is too large")
    return price.quantize(_CENT)


def _parse_date(text: str) -> dt.date:
    if _DATE.fullmatch(text):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            pass
    raise PayloadError("the offer's valid-until must be a date such as 2026-12-05")


def _price_text(price: Decimal) -> str:
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
    el = Element(_q("offer"))
    el.append(form_element(offer_form(offer), "submit"))
    return el


def offer_text(offer: Offer) -> str:
    """The body written for an offer sent without one:
    ``Offer: 320.00 EUR, in stock, valid until 2026-12-05``."""
    text = (
        f"Offer: {_price_text(offer.price)} {offer.currency}, "
        f"{offer.availability.replace('-', ' ')}"
    )
    if offer.valid_until is not None:
        text += f", valid until {offer.valid_until.isoformat()}"
    return text


def parse_decline(el: Element) -> str | None:
    """Parse ``<decline xmlns="urn:orgchat:request:0"><reason>...</reason></decline>``: the reason.

    The reason is optional (None when missing or blank), at most 500
    characters after stripping. A ``request`` attribute is not read here.
    """
    _expect(el, NS, "decline")
    reason: str | None = None
    seen: Element | None = None
    for child in el:
        if child.tag != _q("reason"):
            raise PayloadError(f"unexpected {_describe(child)} in <decline/>")
        _once(seen, child)
        seen = child
        reason = _leaf_text(child).strip() or None
        if reason is not None and len(reason) > MAX_REASON:
            raise PayloadError(f"the reason is longer than {MAX_REASON} characters")
    return reason


def decline_element(reason: str | None) -> Element:
    """The ``<decline/>`` an agent's desk software sends.

    Without ``<reason/>`` when ``reason`` is None::

        <decline xmlns="urn:orgchat:request:0"><reason>Out of stock</reason></decline>
    """
    el = Element(_q("decline"))
    if reason is not None:
        SubElement(el, _q("reason")).text = reason
    return el


def decline_text(reason: str | None) -> str:
    """The body for a decline sent without one: ``Declined: Out of stock`` / ``Declined.``"""
    return f"Declined: {reason}" if reason else "Declined."


# -- request views (IQ results) -------------------------------------------------


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


def requests_element(views: Sequence[RequestView], first_index: int, count: int) -> Element:
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
    ``duplicate``. An empty page has only ``<count/>`` in its set.
    """
    el = Element(_q("requests"))
    for view in views:
        el.append(_view_element(view, summary=True))
    rsm = SubElement(el, _RSM_SET)
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
    el = Element(_q("request"), attrib)
    SubElement(el, _q("subject")).text = view.subject
    if not summary:
        if view.body is not None:
            SubElement(el, _q("body")).text = view.body
        if view.form is not None:
            el.append(form_element(view.form, "result"))
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
        t = SubElement(el, _q("target"), tattrib)
        if not summary:
            if target.offer is not None:
                SubElement(t, _q("offer")).append(form_element(offer_form(target.offer), "result"))
            if target.decline_reason is not None:
                SubElement(t, _q("reason")).text = target.decline_reason
    return el


def parse_request_view(el: Element) -> RequestView:
    """Read a ``<request/>`` of a create, get or close result (client code, tests)."""
    _expect(el, NS, "request")
    subject: str | None = None
    body: str | None = None
    form: Form | None = None
    targets: list[TargetView] = []
    for child in el:
        if child.tag == _q("subject"):
            subject = _leaf_text(child)
        elif child.tag == _q("body"):
            body = _leaf_text(child)
        elif child.tag == _DATA_X:
            form = _read_form(child, None)
        elif child.tag == _q("target"):
            targets.append(_parse_target(child))
        else:
            raise PayloadError(f"unexpected {_describe(child)} in <request/>")
    if subject is None:
        raise PayloadError("<subject/> is missing")
    closed = el.get("closed")
    return RequestView(
        id=_request_id(el.get("id"), "the id attribute"),
        state=_required(el, "state"),
        subject=subject,
        created=parse_stamp(_required(el, "created")),
        expires=parse_stamp(_required(el, "expires")),
        targets=tuple(targets),
        body=body,
        form=form,
        closed=None if closed is None else parse_stamp(closed),
        accepted=el.get("accepted"),
        duplicate=_boolean(el.get("duplicate"), "duplicate", default=False),
    )


def _parse_target(el: Element) -> TargetView:
    offer: Offer | None = None
    decline_reason: str | None = None
    for child in el:
        if child.tag == _q("offer"):
            offer = parse_offer(child)
        elif child.tag == _q("reason"):
            decline_reason = _leaf_text(child)
        else:
            raise PayloadError(f"unexpected {_describe(child)} in <target/>")
    updated = el.get("updated")
    return TargetView(
        jid=_required(el, "jid"),
        status=_required(el, "status"),
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
    _expect(el, NS, "requests")
    views: list[RequestView] = []
    first_index: int | None = None
    count: int | None = None
    for child in el:
        if child.tag == _q("request"):
            views.append(parse_request_view(child))
        elif child.tag == _RSM_SET:
            first = child.find("{" + NS_RSM + "}first")
            if first is not None:
                first_index = _integer(first.get("index") or "", "the result set index")
            count_el = child.find("{" + NS_RSM + "}count")
            if count_el is not None:
                count = _integer(_leaf_text(count_el), "the result set count")
        else:
            raise PayloadError(f"unexpected {_describe(child)} in <requests/>")
    if count is None:
        raise PayloadError("the result set has no count")
    return RequestList(tuple(views), first_index, count)


# -- message payloads (strings) -------------------------------------------------


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
    el = Element(_q("request"), {"id": request_id, "expires": stamp(expires)})
    SubElement(el, _q("subject")).text = subject
    if form is not None:
        el.append(form_element(form, "result"))
    return to_xml(el)


def parse_fanout(el: Element) -> Fanout:
    """Read a fan-out payload (desk software, tests)."""
    _expect(el, NS, "request")
    subject: str | None = None
    form: Form | None = None
    for child in el:
        if child.tag == _q("subject"):
            subject = _leaf_text(child)
        elif child.tag == _DATA_X:
            form = _read_form(child, None)
        else:
            raise PayloadError(f"unexpected {_describe(child)} in <request/>")
    if subject is None:
        raise PayloadError("<subject/> is missing")
    return Fanout(
        _request_id(el.get("id"), "the id attribute"),
        subject,
        parse_stamp(_required(el, "expires")),
        form,
    )


def fanout_text(subject: str, body: str, form: Form | None) -> str:
    """The plain-text body of the fan-out message::

        Request: Winter tyres 205/55 R16

        How much for four, fitted, this week?

        Tyre size: 205/55 R16
        Quantity: 4

        (Asked of several companies. Reply here to answer; your reply reaches only this customer.)

    One line per field with values (label, else var; several values joined
    by ", ", by new lines for text-multi; booleans as yes/no); hidden fields
    are left out, and so is the whole paragraph when no field is shown.
    """
    parts = [f"Request: {subject}", body]
    lines = [line for line in (_field_line(f) for f in form.fields) if line] if form else []
    if lines:
        parts.append("\n".join(lines))
    parts.append(
        "(Asked of several companies. Reply here to answer; your reply reaches only this customer.)"
    )
    return "\n\n".join(parts)


def _field_line(field: Field) -> str | None:
    if field.type == "hidden" or not field.values:
        return None
    values: tuple[str, ...] = field.values
    if field.type == "boolean":
        values = tuple(
            {"1": "yes", "true": "yes", "0": "no", "false": "no"}.get(v.strip(), v) for v in values
        )
    joined = ("\n" if field.type == "text-multi" else ", ").join(values)
    return f"{field.label or field.var}: {joined}"


def reply_payload(request_id: str) -> str:
    """The payload of a company's plain reply to the customer::

    <reply xmlns="urn:orgchat:request:0" request="rabcdefghijklmnopqrst"/>
    """
    return to_xml(Element(_q("reply"), {"request": request_id}))


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
    el = Element(_q("offer"), {"request": request_id})
    el.append(form_element(offer_form(offer), "result"))
    return to_xml(el)


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
        Element(_q("closed"), {"request": request_id, "accepted": "true" if accepted else "false"})
    )


def parse_closed(el: Element) -> bool:
    """Read a ``<closed/>`` notice: True if this company's offer was accepted."""
    _expect(el, NS, "closed")
    _no_children(el)
    return _boolean(_required(el, "accepted"), "accepted", default=False)


def closed_text(accepted: bool, other_accepted: bool) -> str:
    """The body of a close notice, for a company whose offer was accepted, for the
    others when another offer was accepted, or when none was."""
    if accepted:
        return "The customer has closed this request and accepted your offer. Thank you!"
    if other_accepted:
        return (
            "The customer has closed this request and chose another offer. "
            "Thank you for your answer."
        )
    return "The customer has closed this request. Thank you for your answer."


def payload_request(el: Element) -> str:
    """The ``request`` attribute (a request id) of a reply, offer, decline, closed or status."""
    return _request_id(el.get("request"), "the request attribute")


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
    el = Element(_q("status"), {"request": request_id})
    for jid, status in targets:
        SubElement(el, _q("target"), {"jid": jid, "status": status})
    return (
        f'<message type="headline" from="{escape_attr(frm)}" to="{escape_attr(to)}" '
        f'id="{escape_attr(msg_id)}">{to_xml(el)}</message>'
    )


def parse_status(el: Element) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Read a ``<status/>`` notification: the request id and (JID, status) pairs."""
    _expect(el, NS, "status")
    targets: list[tuple[str, str]] = []
    for child in el:
        if child.tag != _q("target"):
            raise PayloadError(f"unexpected {_describe(child)} in <status/>")
        targets.append((_required(child, "jid"), _required(child, "status")))
    return payload_request(el), tuple(targets)


# -- ids and timestamps ---------------------------------------------------------


def new_request_id() -> str:
    """A new public request id: ``r`` and 20 random characters of ``a-z2-7``."""
    return "r" + "".join(secrets.choice(REQUEST_ID_CHARS) for _ in range(20))


def is_request_id(text: str) -> bool:
    return _REQUEST_ID.fullmatch(text) is not None


def stamp(when: dt.datetime) -> str:
    """XEP-0082 UTC timestamp with seconds precision: ``2026-11-28T10:00:00Z``."""
    if when.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(text: str) -> dt.datetime:
    """A XEP-0082 dateTime (``Z`` or an offset), as an aware UTC datetime."""
    if not _DATETIME.fullmatch(text):
        raise PayloadError(f"{_show(text)} is not a XEP-0082 timestamp")
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)
    except ValueError:
        raise PayloadError(f"{_show(text)} is not a XEP-0082 timestamp") from None


# -- XML helpers ----------------------------------------------------------------


def escape_text(text: str) -> str:
    """Character data: ``&``, ``<``, ``>`` and carriage returns escaped."""
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


def escape_attr(text: str) -> str:
    """A double-quoted attribute value; white space other than spaces survives parsing."""
    return escape_text(text).replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;")


def to_xml(el: Element) -> str:
    """Serialise an element on one line, with default-namespace declarations only
    (``<offer xmlns="urn:orgchat:request:0">``, never ``ns0:`` prefixes)."""
    out: list[str] = []
    _write(el, "", out)
    return "".join(out)


def _write(el: Element, parent_ns: str, out: list[str]) -> None:
    ns, name = _split(el.tag)
    out.append("<" + name)
    if ns != parent_ns:
        out.append(f' xmlns="{escape_attr(ns)}"')
    for key, value in el.attrib.items():
        name_ = key
        if key.startswith("{"):
            kns, kname = _split(key)
            if kns != NS_XML:
                raise ValueError(f"namespaced attribute {key!r} is not supported")
            name_ = "xml:" + kname
        out.append(f' {name_}="{escape_attr(value)}"')
    if el.text is None and len(el) == 0:
        out.append("/>")
        return
    out.append(">")
    if el.text:
        out.append(escape_text(el.text))
    for child in el:
        _write(child, ns, out)
        if child.tail:
            out.append(escape_text(child.tail))
    out.append(f"</{name}>")


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return "", tag


def _describe(el: Element) -> str:
    ns, name = _split(el.tag)
    if ns == NS:
        return f"<{name}/>"
    return f"<{name} xmlns='{ns}'/>" if ns else f"<{name}/>"


def _expect(el: Element, ns: str, name: str) -> None:
    if el.tag != "{" + ns + "}" + name:
        raise PayloadError(f"expected <{name} xmlns='{ns}'/>, not {_describe(el)}")


def _once(previous: object, el: Element) -> None:
    if previous is not None:
        raise PayloadError(f"more than one {_describe(el)}")


def _no_children(el: Element) -> None:
    if len(el):
        raise PayloadError(f"unexpected {_describe(el[0])} in {_describe(el)}")


def _leaf_text(el: Element) -> str:
    if len(el):
        raise PayloadError(f"{_describe(el)} must hold text only")
    return el.text or ""


def _required(el: Element, name: str) -> str:
    value = el.get(name)
    if value is None:
        raise PayloadError(f"{_describe(el)} has no {name}")
    return value


def _show(value: str) -> str:
    """A user-supplied value quoted for an error text, cut to a readable length."""
    return repr(value if len(value) <= 40 else value[:40] + "...")


def _boolean(value: str | None, what: str, *, default: bool) -> bool:
    """XML Schema boolean: true, false, 1 or 0 (surrounding white space ignored)."""
    if value is None:
        return default
    text = value.strip()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise PayloadError(f"{what} must be true, false, 1 or 0")


def _integer(value: str, what: str) -> int:
    """A non-negative XML Schema integer (surrounding white space ignored)."""
    text = value.strip()
    if not _INTEGER.fullmatch(text):
        raise PayloadError(f"{what} must be a non-negative integer")
    return int(text)


def _request_id(value: str | None, what: str) -> str:
    if value is None:
        raise PayloadError(f"{what} is missing")
    if not is_request_id(value):
        raise PayloadError(f"{what} is not a request id: {_show(value)}")
    return value


def _bare_jid(value: str | None, what: str) -> str:
    """A bare JID with a localpart (``name@domain``), normalised."""
    if value is None:
        raise PayloadError(f"{what} is missing")
    try:
        jid = JID(value.strip())
    except ValueError:
        raise PayloadError(f"{what} is not a valid JID: {_show(value)}") from None
    if not jid.node or jid.resource:
        raise PayloadError(f"{what} must be a bare JID such as name@domain: {_show(value)}")
    return str(jid.bare)
