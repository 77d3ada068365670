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
from decimal import Decimal
from xml.etree.ElementTree import Element

from extensions import xml
from extensions.forms import NS_DATA
from extensions.xml import PayloadError, show

NS = "urn:orgchat:request:0"
FORM_FIELDS = NS + "#fields"
FORM_OFFER = NS + "#offer"
NS_RSM = "http://jabber.org/protocol/rsm"

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
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})"
)

DATA_X = "{" + NS_DATA + "}x"
RSM_SET = "{" + NS_RSM + "}set"


def q(name: str) -> str:
    """The qualified tag of an element of the namespace."""
    return "{" + NS + "}" + name


# -- readers, with errors naming this namespace's elements briefly ----------------


def describe(el: Element) -> str:
    return xml.describe(el, NS)


def expect(el: Element, ns: str, name: str) -> None:
    xml.expect(el, ns, name, NS)


def once(previous: object, el: Element) -> None:
    xml.once(previous, el, NS)


def no_children(el: Element) -> None:
    xml.no_children(el, NS)


def leaf_text(el: Element) -> str:
    return xml.leaf_text(el, NS)


def required_attr(el: Element, name: str) -> str:
    return xml.required_attr(el, name, NS)


def request_id(value: str | None, what: str) -> str:
    if value is None:
        raise PayloadError(f"{what} is missing")
    if not is_request_id(value):
        raise PayloadError(f"{what} is not a request id: {show(value)}")
    return value


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
        raise PayloadError(f"{show(text)} is not a XEP-0082 timestamp")
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)
    except ValueError:
        raise PayloadError(f"{show(text)} is not a XEP-0082 timestamp") from None
