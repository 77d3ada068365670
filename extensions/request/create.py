"""<create/>: a customer's new request.

Part of ``urn:orgchat:request:0``; see :mod:`extensions.request.stanza`.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement

from extensions.forms import Form, read_form
from extensions.request.stanza import (
    DATA_X,
    FORM_FIELDS,
    MAX_COMPANIES,
    MAX_FIELDS,
    MAX_SEARCH_RESULTS,
    MAX_SEARCH_TEXT,
    MAX_SUBJECT,
    MAX_VALUE,
    NS,
    describe,
    expect,
    leaf_text,
    no_children,
    once,
    q,
)
from extensions.xml import PayloadError, bare_jid, boolean, integer


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
    expect(el, NS, "create")
    include_closed = boolean(el.get("include-closed"), "include-closed", default=False)
    subject: str | None = None
    body: str | None = None
    companies: list[str] = []
    n_companies = 0
    search: Search | None = None
    form: Form | None = None
    for child in el:
        if child.tag == q("subject"):
            once(subject, child)
            subject = leaf_text(child).strip()
            if not subject:
                raise PayloadError("the subject is empty")
            if len(subject) > MAX_SUBJECT:
                raise PayloadError(f"the subject is longer than {MAX_SUBJECT} characters")
        elif child.tag == q("body"):
            once(body, child)
            body = leaf_text(child).strip()
            if not body:
                raise PayloadError("the body is empty")
        elif child.tag == q("company"):
            n_companies += 1
            if n_companies > MAX_COMPANIES:
                raise PayloadError(f"more than {MAX_COMPANIES} companies")
            no_children(child)
            jid = bare_jid(child.get("jid"), "the jid of a <company/>")
            if jid not in companies:
                companies.append(jid)
        elif child.tag == q("search"):
            once(search, child)
            search = _parse_search(child)
        elif child.tag == DATA_X:
            once(form, child)
            if child.get("type") != "submit":
                raise PayloadError("the fields form must be of type submit")
            form = read_form(child, FORM_FIELDS, max_fields=MAX_FIELDS, max_value=MAX_VALUE)
        else:
            raise PayloadError(f"unexpected {describe(child)} in <create/>")
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
    no_children(el)

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
        limit = integer(raw, "the search max")
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
    el = Element(q("create"), {"include-closed": "true" if create.include_closed else "false"})
    SubElement(el, q("subject")).text = create.subject
    SubElement(el, q("body")).text = create.body
    for jid in create.companies:
        SubElement(el, q("company"), {"jid": jid})
    if create.search is not None:
        s = create.search
        attrib = {
            name: value
            for name, value in (("category", s.category), ("city", s.city), ("text", s.text))
            if value is not None
        }
        if s.max is not None:
            attrib["max"] = str(s.max)
        SubElement(el, q("search"), attrib)
    if create.form is not None:
        el.append(create.form.element("submit"))
    return el
