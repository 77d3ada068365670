"""extensions.request against its documentation and its schema.

docs/protocol.md ("Requests to several companies") marks each XML example with
``<!-- request-example: NAME -->``. For every example, the payload in
``urn:orgchat:request:0`` must be exactly what the code builds for the story's
data (canonical XML), must parse back to that data, and must be valid against
docs/request.xsd; so must everything the code builds. Then every validation
rule: one bad value each, raising PayloadError.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from lxml import etree

from component.features.requests.iq import limits_form
from component.i18n import translate_form
from extensions import forms
from extensions.forms import Field, Form, read_form
from extensions.request.create import Create, Search, create_element, parse_create
from extensions.request.offers import (
    Offer,
    decline_element,
    decline_text,
    offer_element,
    offer_form,
    offer_from_form,
    offer_text,
    parse_decline,
    parse_offer,
)
from extensions.request.payloads import (
    Fanout,
    closed_payload,
    closed_text,
    decline_payload,
    fanout_payload,
    fanout_text,
    offer_payload,
    parse_closed,
    parse_fanout,
    parse_status,
    payload_request,
    reply_payload,
    status_message,
)
from extensions.request.queries import (
    Close,
    ListQuery,
    close_element,
    get_element,
    list_element,
    parse_close,
    parse_get,
    parse_list,
)
from extensions.request.stanza import (
    FORM_FIELDS,
    FORM_OFFER,
    NS,
    is_request_id,
    new_request_id,
    parse_stamp,
    stamp,
)
from extensions.request.views import (
    RequestList,
    RequestView,
    TargetView,
    parse_request_view,
    parse_requests,
    request_element,
    requests_element,
)
from extensions.xml import PayloadError, to_xml

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "protocol.md"
XSD = ROOT / "docs" / "request.xsd"
SECTION = "## Requests to several companies (urn:orgchat:request:0)"
EXAMPLE = re.compile(r"<!-- request-example: ([a-z0-9-]+) -->\n```xml\n(.*?)```", re.S)
NS_DATA = "jabber:x:data"
NS_RSM = "http://jabber.org/protocol/rsm"

# -- the story of the documentation ---------------------------------------------

RID = "rabcdefghijklmnopqrst"
NORTH = "tyres-north@biz.localhost"
SOUTH = "tyres-south@biz.localhost"
EAST = "tyres-east@biz.localhost"
NOPE = "nope@biz.localhost"
SUBJECT = "Winter tyres 205/55 R16"
BODY = "How much for four, fitted, this week?"
CREATED = dt.datetime(2026, 11, 28, 10, 0, tzinfo=dt.UTC)
EXPIRES = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
CLOSED = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
FIELDS = Form(
    form_type=FORM_FIELDS,
    fields=(
        Field("tyre-size", ("205/55 R16",), label="Tyre size"),
        Field("quantity", ("4",), label="Quantity"),
    ),
)
OFFER = Offer(Decimal("320.00"), "EUR", "in-stock", dt.date(2026, 12, 5))
REASON = "Out of stock"

CREATE = Create(SUBJECT, BODY, (NORTH, SOUTH, EAST, NOPE), None, FIELDS, False)
CREATE_SEARCH = Create(SUBJECT, BODY, (), Search("tyres", "Novosibirsk", "winter", 5), None, True)
CREATE_VIEW = RequestView(
    id=RID,
    state="open",
    subject=SUBJECT,
    created=CREATED,
    expires=EXPIRES,
    targets=(
        TargetView(NORTH, "sent", name="Tyres North"),
        TargetView(SOUTH, "sent", name="Tyres South"),
        TargetView(
            EAST, "refused", name="Tyres East", reason="closed", opens="2026-11-29T09:00:00+07:00"
        ),
        TargetView(NOPE, "refused", reason="unknown"),
    ),
)
ANSWERED = TargetView(
    NORTH,
    "answered",
    name="Tyres North",
    updated=dt.datetime(2026, 11, 28, 10, 40, tzinfo=dt.UTC),
    offer=OFFER,
)
DECLINED = TargetView(
    SOUTH,
    "declined",
    name="Tyres South",
    updated=dt.datetime(2026, 11, 28, 10, 20, tzinfo=dt.UTC),
    decline_reason=REASON,
)
GET_VIEW = RequestView(
    id=RID,
    state="open",
    subject=SUBJECT,
    created=CREATED,
    expires=EXPIRES,
    targets=(ANSWERED, DECLINED),
    body=BODY,
    form=FIELDS,
)
CLOSE = Close(RID, NORTH)
CLOSE_VIEW = dataclasses.replace(GET_VIEW, state="closed", closed=CLOSED, accepted=NORTH)
#: A list entry as the component gives it (no updated times); the body, form,
#: offer and decline reason must be left out of the summary.
LISTED = dataclasses.replace(
    GET_VIEW,
    targets=tuple(dataclasses.replace(t, updated=None) for t in GET_VIEW.targets),
)
LIST_SUMMARY = dataclasses.replace(
    LISTED,
    body=None,
    form=None,
    targets=tuple(dataclasses.replace(t, offer=None, decline_reason=None) for t in LISTED.targets),
)
LIST = ListQuery("open", 10, None, None)
#: A list asked for in full: every request as a get gives it.
LIST_FULL = ListQuery(None, 10, None, None, full=True)
LISTED_FULL = GET_VIEW
STATUS = ((NORTH, "seen"), (SOUTH, "delivered"))


def built_status() -> ET.Element:
    return ET.fromstring(status_message("biz.localhost", "anna@localhost", "n1", RID, STATUS))


#: What the code builds for each example (an element, or a payload string),
#: compared with the example's payload (``status``: the whole message).
BUILT: dict[str, Callable[[], ET.Element | str]] = {
    "create": lambda: create_element(CREATE),
    "create-search": lambda: create_element(CREATE_SEARCH),
    "create-result": lambda: request_element(CREATE_VIEW),
    "fanout": lambda: fanout_payload(RID, SUBJECT, EXPIRES, FIELDS),
    "status": built_status,
    "agent-offer": lambda: offer_element(OFFER),
    "agent-decline": lambda: decline_element(REASON),
    "customer-reply": lambda: reply_payload(RID),
    "customer-offer": lambda: offer_payload(RID, OFFER),
    "customer-decline": lambda: decline_payload(RID, REASON),
    "get": lambda: get_element(RID),
    "get-result": lambda: request_element(GET_VIEW),
    "list": lambda: list_element(LIST),
    "list-result": lambda: requests_element([LISTED], 0, 1),
    "list-empty-result": lambda: requests_element([], 0, 0),
    "list-full": lambda: list_element(LIST_FULL),
    "list-full-result": lambda: requests_element([LISTED_FULL], 0, 1, full=True),
    "close": lambda: close_element(CLOSE),
    "close-result": lambda: request_element(CLOSE_VIEW),
    "closed": lambda: closed_payload(RID, True),
}

#: How each example's payload parses, and to what.
PARSED: dict[str, tuple[Callable[[ET.Element], Any], Any]] = {
    "create": (parse_create, CREATE),
    "create-search": (parse_create, CREATE_SEARCH),
    "create-result": (parse_request_view, CREATE_VIEW),
    "fanout": (parse_fanout, Fanout(RID, SUBJECT, EXPIRES, FIELDS)),
    "status": (parse_status, (RID, STATUS)),
    "agent-offer": (parse_offer, OFFER),
    "agent-decline": (parse_decline, REASON),
    "customer-reply": (payload_request, RID),
    "customer-offer": (lambda el: (payload_request(el), parse_offer(el)), (RID, OFFER)),
    "customer-decline": (
        lambda el: (payload_request(el), parse_decline(el)),
        (RID, REASON),
    ),
    "get": (parse_get, RID),
    "get-result": (parse_request_view, GET_VIEW),
    "list": (parse_list, LIST),
    "list-result": (parse_requests, RequestList((LIST_SUMMARY,), 0, 1)),
    "list-empty-result": (parse_requests, RequestList((), None, 0)),
    "list-full": (parse_list, LIST_FULL),
    "list-full-result": (parse_requests, RequestList((LISTED_FULL,), 0, 1)),
    "close": (parse_close, CLOSE),
    "close-result": (parse_request_view, CLOSE_VIEW),
    "closed": (lambda el: (payload_request(el), parse_closed(el)), (RID, True)),
}

#: Examples without a payload of ours.
NO_PAYLOAD = {"error-too-many", "disco-limits"}


# -- helpers ----------------------------------------------------------------------


@cache
def section() -> str:
    text = DOC.read_text()
    assert SECTION in text, f"{SECTION!r} missing from docs/protocol.md"
    return text[text.index(SECTION) :]


@cache
def examples() -> dict[str, str]:
    found = EXAMPLE.findall(section())
    names = [name for name, _ in found]
    assert len(names) == len(set(names)), f"example names repeated: {names}"
    return dict(found)


def stanza(name: str) -> ET.Element:
    return ET.fromstring(examples()[name])


def payload_of(el: ET.Element) -> ET.Element:
    ours = [child for child in el if child.tag.startswith("{" + NS + "}")]
    assert len(ours) == 1, f"expected one payload in {NS}, found {len(ours)}"
    return ours[0]


def payload(name: str) -> ET.Element:
    return payload_of(stanza(name))


def canonical(xml: ET.Element | str) -> str:
    text = xml if isinstance(xml, str) else ET.tostring(xml, encoding="unicode")
    return ET.canonicalize(text, strip_text=True, rewrite_prefixes=True)


def child_text(el: ET.Element, name: str) -> str | None:
    found = el.find(name)
    return None if found is None else found.text


@cache
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD)))


def assert_valid(xml: str) -> None:
    s = schema()
    ok = s.validate(etree.fromstring(xml.encode()))
    assert ok, str(s.error_log)


def as_string(xml: ET.Element | str) -> str:
    return xml if isinstance(xml, str) else ET.tostring(xml, encoding="unicode")


def parse(xml: str) -> ET.Element:
    return ET.fromstring(xml)


# -- the documentation's examples -------------------------------------------------


def test_every_example_is_covered() -> None:
    assert set(examples()) == set(BUILT) | NO_PAYLOAD
    assert set(PARSED) == set(BUILT)


@pytest.mark.parametrize("name", sorted(BUILT))
def test_built_equals_example(name: str) -> None:
    expected = stanza(name) if name == "status" else payload(name)
    assert canonical(BUILT[name]()) == canonical(expected)


@pytest.mark.parametrize("name", sorted(PARSED))
def test_example_parses_back(name: str) -> None:
    parser, expected = PARSED[name]
    assert parser(payload(name)) == expected


@pytest.mark.parametrize("name", sorted(set(BUILT)))
def test_example_is_valid(name: str) -> None:
    el = etree.fromstring(examples()[name].encode())
    ours = [child for child in el if etree.QName(child).namespace == NS]
    assert len(ours) == 1
    assert schema().validate(ours[0]), str(schema().error_log)


@pytest.mark.parametrize("name", sorted(BUILT))
def test_built_is_valid(name: str) -> None:
    built = BUILT[name]()
    xml = as_string(built)
    if name == "status":
        xml = as_string(payload_of(parse(xml)))
    assert_valid(xml)


def test_error_example() -> None:
    el = stanza("error-too-many")
    assert el.get("type") == "error"
    assert not [c for c in el.iter() if c.tag.startswith("{" + NS + "}")]


def test_disco_limits_example_is_the_domain_form() -> None:
    """The limits in the domain's disco#info: the form the requests feature adds."""
    query = stanza("disco-limits").find("{http://jabber.org/protocol/disco#info}query")
    assert query is not None
    expected = query.find(f"{{{NS_DATA}}}x")
    assert expected is not None
    built = translate_form(limits_form(10), None).element()
    assert canonical(built) == canonical(expected)
    features = [f.get("var") for f in query.iter("{http://jabber.org/protocol/disco#info}feature")]
    assert features == [NS]


def test_message_bodies_are_what_the_code_writes() -> None:
    fanout = stanza("fanout")
    assert child_text(fanout, "body") == fanout_text(SUBJECT, BODY, FIELDS)
    assert child_text(fanout, "thread") == RID
    closed = stanza("closed")
    assert child_text(closed, "body") == closed_text(True, False)
    assert child_text(closed, "thread") == RID
    for name in ("customer-reply", "customer-offer", "customer-decline"):
        assert child_text(stanza(name), "thread") == RID


def test_texts_quoted_in_the_documentation() -> None:
    prose = " ".join(section().split())
    for text in (
        offer_text(OFFER),
        decline_text(REASON),
        decline_text(None),
        closed_text(True, False),
        closed_text(False, True),
        closed_text(False, False),
    ):
        assert f'"{text}"' in prose, text


def test_built_payload_strings_parse_to_the_built_elements() -> None:
    # The string renderer (to_xml) and ElementTree agree.
    for name, build in BUILT.items():
        built = build()
        if isinstance(built, ET.Element):
            assert canonical(to_xml(built)) == canonical(built), name


def test_schema_rejects_what_the_code_rejects() -> None:
    bad = [
        f'<request xmlns="{NS}" id="r123"/>',
        f'<close xmlns="{NS}" request="{RID}" accept="tyres-north@biz.localhost/desk"/>',
        f'<status xmlns="{NS}" request="{RID}"><target jid="{NORTH}" status="lost"/></status>',
        f'<create xmlns="{NS}"><subject> </subject><body>b</body><company jid="{NORTH}"/></create>',
        f'<create xmlns="{NS}"><subject>s</subject><body>b</body></create>',
        f'<create xmlns="{NS}"><subject>s</subject><body>b</body><company jid="{NORTH}"/>'
        f'<search city="Berlin"/></create>',
        f'<create xmlns="{NS}" include-closed="yes"><subject>s</subject><body>b</body>'
        f'<company jid="{NORTH}"/></create>',
        f'<search xmlns="{NS}" max="101"/>',
        f'<decline xmlns="{NS}"><reason>{"x" * 501}</reason></decline>',
        f'<requests xmlns="{NS}" state="lost"/>',
        f'<request xmlns="{NS}" id="{RID}" created="2026-11-28T10:00:00+01:00"/>',
    ]
    for xml in bad:
        assert not schema().validate(etree.fromstring(xml.encode())), xml


# -- create ------------------------------------------------------------------------


def create_xml(inner: str, attrs: str = "") -> ET.Element:
    return parse(f'<create xmlns="{NS}"{attrs}>{inner}</create>')


SB = "<subject>Tyres</subject><body>How much?</body>"
CO = f'<company jid="{NORTH}"/>'


def form_xml(fields: str, ftype: str = "submit", form_type: str = FORM_FIELDS) -> str:
    return (
        f'<x xmlns="{NS_DATA}" type="{ftype}">'
        f'<field var="FORM_TYPE" type="hidden"><value>{form_type}</value></field>{fields}</x>'
    )


def n_fields(n: int) -> str:
    return "".join(f'<field var="f{i}"><value>v</value></field>' for i in range(n))


BAD_CREATE = [
    ("no subject", f"<body>b</body>{CO}", "", "<subject/> is missing"),
    ("blank subject", f"<subject>  </subject><body>b</body>{CO}", "", "subject is empty"),
    ("long subject", f"<subject>{'s' * 201}</subject><body>b</body>{CO}", "", "200"),
    ("subject markup", f"<subject>a<b/>c</subject><body>b</body>{CO}", "", "text only"),
    ("two subjects", f"<subject>a</subject>{SB}{CO}", "", "More than one <subject/>"),
    ("no body", f"<subject>s</subject>{CO}", "", "<body/> is missing"),
    ("blank body", f"<subject>s</subject><body>\n \t</body>{CO}", "", "body is empty"),
    ("two bodies", f"{SB}<body>again</body>{CO}", "", "More than one <body/>"),
    ("company without jid", f"{SB}<company/>", "", "The jid of a <company/> is missing"),
    ("invalid jid", f'{SB}<company jid="a b@biz.localhost"/>', "", "not a valid JID"),
    ("jid with resource", f'{SB}<company jid="{NORTH}/desk"/>', "", "bare JID"),
    ("jid without localpart", f'{SB}<company jid="biz.localhost"/>', "", "bare JID"),
    ("empty jid", f'{SB}<company jid=""/>', "", "The jid of a <company/> must be a bare JID"),
    (
        "company with child",
        f'{SB}<company jid="{NORTH}"><x/></company>',
        "",
        "Unexpected <x/> in <company/>",
    ),
    (
        "too many companies",
        SB + "".join(f'<company jid="c{i}@biz.localhost"/>' for i in range(101)),
        "",
        "More than 100 companies",
    ),
    ("companies and search", f'{SB}{CO}<search city="Berlin"/>', "", "not both"),
    ("no companies, no search", SB, "", "at least one <company/>"),
    ("search without criteria", f'{SB}<search max="5"/>', "", "at least one of category"),
    ("search blank criteria", f'{SB}<search city=" " text=""/>', "", "at least one of category"),
    ("search max 0", f'{SB}<search city="Berlin" max="0"/>', "", "between 1 and 100"),
    ("search max 101", f'{SB}<search city="Berlin" max="101"/>', "", "between 1 and 100"),
    ("search max words", f'{SB}<search city="Berlin" max="five"/>', "", "integer"),
    ("search max negative", f'{SB}<search city="Berlin" max="-1"/>', "", "integer"),
    ("search long text", f'{SB}<search text="{"t" * 201}"/>', "", "200"),
    ("two searches", f'{SB}<search city="A"/><search city="B"/>', "", "More than one <search/>"),
    (
        "search with child",
        f'{SB}<search city="A"><company/></search>',
        "",
        "Unexpected <company/> in <search/>",
    ),
    ("include-closed yes", f"{SB}{CO}", ' include-closed="yes"', "true, false, 1 or 0"),
    ("include-closed empty", f"{SB}{CO}", ' include-closed=""', "true, false, 1 or 0"),
    ("unknown element", f"{SB}{CO}<urgent/>", "", "Unexpected <urgent/> in <create/>"),
    (
        "foreign element",
        f'{SB}{CO}<x xmlns="urn:other"/>',
        "",
        "Unexpected <x xmlns='urn:other'/> in <create/>",
    ),
    ("form of type result", SB + CO + form_xml("", "result"), "", "of type submit"),
    ("form of type form", SB + CO + form_xml("", "form"), "", "of type submit"),
    ("form wrong FORM_TYPE", SB + CO + form_xml("", form_type=FORM_OFFER), "", "FORM_TYPE must"),
    ("form without FORM_TYPE", f'{SB}{CO}<x xmlns="{NS_DATA}" type="submit"/>', "", "no FORM_TYPE"),
    ("form 21 fields", SB + CO + form_xml(n_fields(21)), "", "more than 20 fields"),
    (
        "long value",
        SB + CO + form_xml(f'<field var="a"><value>{"v" * 501}</value></field>'),
        "",
        "longer than 500",
    ),
    ("field without var", SB + CO + form_xml("<field><value>v</value></field>"), "", "var"),
    ("field empty var", SB + CO + form_xml('<field var=""/>'), "", "var"),
    (
        "long var",
        SB + CO + form_xml(f'<field var="{"v" * 501}"/>'),
        "",
        "longer than 500",
    ),
    (
        "long label",
        SB + CO + form_xml(f'<field var="a" label="{"l" * 501}"/>'),
        "",
        "longer than 500",
    ),
    ("duplicate var", SB + CO + form_xml('<field var="a"/><field var="a"/>'), "", "twice"),
    ("unknown field type", SB + CO + form_xml('<field var="a" type="colour"/>'), "", "type"),
    (
        "several values, single type",
        SB
        + CO
        + form_xml('<field var="a" type="text-single"><value>1</value><value>2</value></field>'),
        "",
        "several values",
    ),
    (
        "value with markup",
        SB + CO + form_xml('<field var="a"><value>x<b/></value></field>'),
        "",
        "text only",
    ),
    (
        "FORM_TYPE twice",
        SB + CO + form_xml(f'<field var="FORM_TYPE"><value>{FORM_FIELDS}</value></field>'),
        "",
        "twice",
    ),
    (
        "reported in form",
        SB + CO + form_xml(f'<reported xmlns="{NS_DATA}"/>'),
        "",
        "Unexpected <reported xmlns='jabber:x:data'/> in the data form",
    ),
    (
        "two forms",
        SB + CO + form_xml("") + form_xml(""),
        "",
        "More than one <x xmlns='jabber:x:data'/>",
    ),
]


@pytest.mark.parametrize(
    ("inner", "attrs", "message"), [c[1:] for c in BAD_CREATE], ids=[c[0] for c in BAD_CREATE]
)
def test_create_rejects(inner: str, attrs: str, message: str) -> None:
    with pytest.raises(PayloadError, match=re.escape(message)):
        parse_create(create_xml(inner, attrs))


def test_create_rejects_another_element() -> None:
    with pytest.raises(PayloadError, match="Expected <create"):
        parse_create(parse(f'<close xmlns="{NS}" request="{RID}"/>'))


def test_create_limits_are_inclusive() -> None:
    subject = "s" * 200
    companies = "".join(f'<company jid="c{i}@biz.localhost"/>' for i in range(100))
    fields = form_xml(
        n_fields(19) + f'<field var="last" label="{"l" * 500}"><value>{"v" * 500}</value></field>'
    )
    got = parse_create(
        create_xml(
            f"<subject>\n  {subject}  \n</subject><body> b </body>{companies}{fields}",
            ' include-closed=" 1 "',
        )
    )
    assert got.subject == subject
    assert got.body == "b"
    assert len(got.companies) == 100
    assert got.form is not None and len(got.form.fields) == 20
    assert got.include_closed is True


def test_create_normalises_and_deduplicates_companies() -> None:
    got = parse_create(
        create_xml(
            f'{SB}<company jid="Tyres-North@Biz.Localhost"/><company jid="{SOUTH}"/>'
            f'<company jid=" {NORTH} "/>'
        )
    )
    assert got.companies == (NORTH, SOUTH)
    assert got.include_closed is False
    assert got.form is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("1", True), ("false", False), ("0", False), (" true ", True)],
)
def test_create_include_closed(value: str, expected: bool) -> None:
    got = parse_create(create_xml(SB + CO, f' include-closed="{value}"'))
    assert got.include_closed is expected


def test_create_search() -> None:
    got = parse_create(create_xml(f'{SB}<search city=" Berlin " max="100"/>'))
    assert got.search == Search(None, "Berlin", None, 100)
    assert got.companies == ()


def test_create_form_keeps_data_form_details() -> None:
    fields = (
        '<field var="notes" type="text-multi" label="Notes"><value>a</value><value>b</value>'
        "<desc>ignored</desc><required/></field>"
        '<field var="empty"/>'
    )
    got = parse_create(
        create_xml(
            SB + CO + form_xml(fields).replace('type="submit">', 'type="submit"><title>T</title>')
        )
    )
    assert got.form == Form(
        form_type=FORM_FIELDS,
        fields=(Field("notes", ("a", "b"), "Notes", "text-multi"), Field("empty", ())),
    )


# -- close, get, list ----------------------------------------------------------------

BAD_CLOSE = [
    ("no request", f'<close xmlns="{NS}"/>', "The request attribute is missing"),
    ("short id", f'<close xmlns="{NS}" request="r123"/>', "not a request id"),
    ("upper-case id", f'<close xmlns="{NS}" request="{RID.upper()}"/>', "not a request id"),
    ("id with 1", f'<close xmlns="{NS}" request="r1bcdefghijklmnopqrst"/>', "not a request id"),
    ("id too long", f'<close xmlns="{NS}" request="{RID}a"/>', "not a request id"),
    ("accept invalid", f'<close xmlns="{NS}" request="{RID}" accept="a b@c"/>', "valid JID"),
    ("accept full jid", f'<close xmlns="{NS}" request="{RID}" accept="{NORTH}/x"/>', "bare JID"),
    ("accept empty", f'<close xmlns="{NS}" request="{RID}" accept=""/>', "accept"),
    (
        "child",
        f'<close xmlns="{NS}" request="{RID}"><reason/></close>',
        "Unexpected <reason/> in <close/>",
    ),
]


@pytest.mark.parametrize(
    ("xml", "message"), [c[1:] for c in BAD_CLOSE], ids=[c[0] for c in BAD_CLOSE]
)
def test_close_rejects(xml: str, message: str) -> None:
    with pytest.raises(PayloadError, match=re.escape(message)):
        parse_close(parse(xml))


def test_close_without_accept() -> None:
    assert parse_close(parse(f'<close xmlns="{NS}" request="{RID}"/>')) == Close(RID, None)


BAD_GET = [
    ("no id", f'<request xmlns="{NS}"/>', "The id attribute is missing"),
    ("bad id", f'<request xmlns="{NS}" id="42"/>', "not a request id"),
    (
        "child",
        f'<request xmlns="{NS}" id="{RID}"><subject/></request>',
        "Unexpected <subject/> in <request/>",
    ),
    ("other element", f'<requests xmlns="{NS}"/>', "Expected <request"),
    ("other namespace", f'<request xmlns="urn:xmpp:receipts" id="{RID}"/>', "Expected <request"),
]


@pytest.mark.parametrize(("xml", "message"), [c[1:] for c in BAD_GET], ids=[c[0] for c in BAD_GET])
def test_get_rejects(xml: str, message: str) -> None:
    with pytest.raises(PayloadError, match=re.escape(message)):
        parse_get(parse(xml))


def list_xml(rsm: str | None = None, attrs: str = "") -> ET.Element:
    inner = "" if rsm is None else f'<set xmlns="{NS_RSM}">{rsm}</set>'
    return parse(f'<requests xmlns="{NS}"{attrs}>{inner}</requests>')


BAD_LIST = [
    ("bad state", None, ' state="pending"', "open, closed or expired"),
    ("bad full", None, ' full="yes"', "The full attribute must be true, false, 1 or 0"),
    ("max negative", "<max>-1</max>", "", "non-negative integer"),
    ("max words", "<max>ten</max>", "", "non-negative integer"),
    ("max empty", "<max/>", "", "non-negative integer"),
    ("max decimal", "<max>1.5</max>", "", "non-negative integer"),
    ("after not an id", "<after>42</after>", "", "not a request id"),
    ("after empty", "<after/>", "", "not a request id"),
    ("before not an id", "<before>x</before>", "", "not a request id"),
    ("after and before", f"<after>{RID}</after><before/>", "", "not both"),
    ("index", "<index>3</index>", "", "index is not supported"),
    (
        "unknown rsm child",
        "<first/>",
        "",
        "Unexpected <first xmlns='http://jabber.org/protocol/rsm'/> in the result set",
    ),
    ("max twice", "<max>1</max><max>2</max>", "", "twice"),
]


@pytest.mark.parametrize(
    ("rsm", "attrs", "message"), [c[1:] for c in BAD_LIST], ids=[c[0] for c in BAD_LIST]
)
def test_list_rejects(rsm: str | None, attrs: str, message: str) -> None:
    with pytest.raises(PayloadError, match=re.escape(message)):
        parse_list(list_xml(rsm, attrs))


def test_list_rejects_unknown_children() -> None:
    with pytest.raises(PayloadError, match="Unexpected <request/>"):
        parse_list(parse(f'<requests xmlns="{NS}"><request id="{RID}"/></requests>'))
    with pytest.raises(PayloadError, match="More than one <set"):
        parse_list(
            parse(
                f'<requests xmlns="{NS}"><set xmlns="{NS_RSM}"/><set xmlns="{NS_RSM}"/></requests>'
            )
        )


@pytest.mark.parametrize(
    ("rsm", "expected"),
    [
        (None, ListQuery(None, 20, None, None)),
        ("", ListQuery(None, 20, None, None)),
        ("<max>0</max>", ListQuery(None, 0, None, None)),
        ("<max> 100 </max>", ListQuery(None, 100, None, None)),
        ("<max>1000000</max>", ListQuery(None, 100, None, None)),
        ("<before/>", ListQuery(None, 20, None, "")),
        (f"<max>5</max><before>{RID}</before>", ListQuery(None, 5, None, RID)),
        (f"<after>{RID}</after>", ListQuery(None, 20, RID, None)),
    ],
)
def test_list_paging(rsm: str | None, expected: ListQuery) -> None:
    assert parse_list(list_xml(rsm)) == expected


@pytest.mark.parametrize(
    "query", [ListQuery(None, 0, None, ""), ListQuery("expired", 3, RID, None)]
)
def test_list_round_trip(query: ListQuery) -> None:
    assert parse_list(list_element(query)) == query


# -- offers and declines ---------------------------------------------------------


def offer_xml(fields: Mapping[str, str | list[str]], ftype: str = "submit") -> ET.Element:
    inner = ""
    for var, value in fields.items():
        values = value if isinstance(value, list) else [value]
        inner += (
            f'<field var="{var}">' + "".join(f"<value>{v}</value>" for v in values) + "</field>"
        )
    return parse(f'<offer xmlns="{NS}">{form_xml(inner, ftype, FORM_OFFER)}</offer>')


GOOD_OFFER = {"price": "320.00", "currency": "EUR", "availability": "in-stock"}

BAD_OFFER = [
    ("no price", {"currency": "EUR", "availability": "in-stock"}, "no price"),
    ("no currency", {"price": "1", "availability": "in-stock"}, "no currency"),
    ("no availability", {"price": "1", "currency": "EUR"}, "no availability"),
    ("negative price", {**GOOD_OFFER, "price": "-1"}, "number such as"),
    ("price words", {**GOOD_OFFER, "price": "cheap"}, "number such as"),
    ("price exponent", {**GOOD_OFFER, "price": "1e3"}, "number such as"),
    ("price comma", {**GOOD_OFFER, "price": "320,00"}, "number such as"),
    ("price empty", {**GOOD_OFFER, "price": ""}, "number such as"),
    ("price three decimals", {**GOOD_OFFER, "price": "1.234"}, "more than 2 decimals"),
    ("price too large", {**GOOD_OFFER, "price": "1000000000000"}, "too large"),
    ("price twice", {**GOOD_OFFER, "price": ["1", "2"]}, "exactly one value"),
    ("price no value", {**GOOD_OFFER, "price": []}, "exactly one value"),
    ("currency lower-case", {**GOOD_OFFER, "currency": "eur"}, "three upper-case letters"),
    ("currency four letters", {**GOOD_OFFER, "currency": "EURO"}, "three upper-case letters"),
    ("currency symbol", {**GOOD_OFFER, "currency": "€"}, "three upper-case letters"),
    ("availability unknown", {**GOOD_OFFER, "availability": "maybe"}, "in-stock, to-order"),
    ("valid-until no date", {**GOOD_OFFER, "valid-until": "2026-13-01"}, "date such as"),
    ("valid-until format", {**GOOD_OFFER, "valid-until": "05.12.2026"}, "date such as"),
    ("valid-until time", {**GOOD_OFFER, "valid-until": "2026-12-05T10:00"}, "date such as"),
    ("unknown field", {**GOOD_OFFER, "note": "fitted"}, "Unknown offer field 'note'"),
]


@pytest.mark.parametrize(
    ("fields", "message"), [c[1:] for c in BAD_OFFER], ids=[c[0] for c in BAD_OFFER]
)
def test_offer_rejects(fields: dict[str, str | list[str]], message: str) -> None:
    with pytest.raises(PayloadError, match=re.escape(message)):
        parse_offer(offer_xml(fields))


def test_offer_rejects_bad_shapes() -> None:
    with pytest.raises(PayloadError, match="The offer has no data form"):
        parse_offer(parse(f'<offer xmlns="{NS}"/>'))
    with pytest.raises(PayloadError, match="Unexpected <reason/> in <offer/>"):
        parse_offer(parse(f'<offer xmlns="{NS}"><reason/></offer>'))
    with pytest.raises(PayloadError, match="FORM_TYPE must"):
        parse_offer(parse(f'<offer xmlns="{NS}">{form_xml("")}</offer>'))
    two = form_xml("", form_type=FORM_OFFER) * 2
    with pytest.raises(PayloadError, match="More than one <x"):
        parse_offer(parse(f'<offer xmlns="{NS}">{two}</offer>'))
    with pytest.raises(PayloadError, match="submit or result"):
        parse_offer(offer_xml(GOOD_OFFER, "form"))


@pytest.mark.parametrize(
    ("price", "expected"),
    [
        ("0", "0.00"),
        ("320", "320.00"),
        ("320.5", "320.50"),
        (" 7.10 ", "7.10"),
        ("999999999999.99", "999999999999.99"),
        ("1.000", "1.00"),
    ],
)
def test_offer_prices(price: str, expected: str) -> None:
    got = parse_offer(offer_xml({**GOOD_OFFER, "price": price}, "result"))
    assert got == Offer(Decimal(expected), "EUR", "in-stock")
    assert str(offer_form(got).fields[0].values[0]) == expected


def test_offer_round_trip_through_storage() -> None:
    for offer in (
        OFFER,
        Offer(Decimal("0"), "JPY", "to-order"),
        Offer(Decimal(5), "USD", "unavailable"),
    ):
        assert offer_from_form(forms.from_xml(forms.to_xml(offer_form(offer)))) == offer


def test_offer_text() -> None:
    assert offer_text(OFFER) == "Offer: 320.00 EUR, in stock, valid until 2026-12-05"
    assert offer_text(Offer(Decimal(12), "USD", "to-order")) == "Offer: 12.00 USD, to order"


BAD_DECLINE = [
    ("long reason", f'<decline xmlns="{NS}"><reason>{"r" * 501}</reason></decline>', "500"),
    (
        "two reasons",
        f'<decline xmlns="{NS}"><reason>a</reason><reason>b</reason></decline>',
        "More than one <reason/>",
    ),
    ("unknown child", f'<decline xmlns="{NS}"><why/></decline>', "Unexpected <why/> in <decline/>"),
    ("reason markup", f'<decline xmlns="{NS}"><reason>a<b/></reason></decline>', "text only"),
    ("other element", f'<offer xmlns="{NS}"/>', "Expected <decline"),
]


@pytest.mark.parametrize(
    ("xml", "message"), [c[1:] for c in BAD_DECLINE], ids=[c[0] for c in BAD_DECLINE]
)
def test_decline_rejects(xml: str, message: str) -> None:
    with pytest.raises(PayloadError, match=re.escape(message)):
        parse_decline(parse(xml))


@pytest.mark.parametrize(
    ("xml", "expected"),
    [
        (f'<decline xmlns="{NS}"/>', None),
        (f'<decline xmlns="{NS}"><reason> </reason></decline>', None),
        (
            f'<decline xmlns="{NS}"><reason> Closed for the winter </reason></decline>',
            "Closed for the winter",
        ),
        (f'<decline xmlns="{NS}"><reason>{"r" * 500}</reason></decline>', "r" * 500),
    ],
)
def test_decline_reasons(xml: str, expected: str | None) -> None:
    assert parse_decline(parse(xml)) == expected


def test_decline_texts() -> None:
    assert decline_text("Out of stock") == "Declined: Out of stock"
    assert decline_text(None) == "Declined."
    assert canonical(decline_payload(RID, None)) == canonical(
        f'<decline xmlns="{NS}" request="{RID}"/>'
    )


# -- data forms ------------------------------------------------------------------

ROUND_TRIP_FORMS = [
    FIELDS,
    Form(form_type=FORM_FIELDS, fields=()),
    Form(form_type=FORM_OFFER, fields=(Field("price", ("1.00",)),)),
    Form(
        form_type="urn:example:x&y",
        fields=(
            Field("q", ("a < b & c > \"d\" 'e'",), label='Label "quoted" & <tagged>'),
            Field("lines", ("one\ntwo\r\nthree\ttab", "  padded  "), type="text-multi"),
            Field("empty", ("",), label=""),
            Field("none"),
            Field("ok", ("1",), type="boolean"),
            Field("hidden", ("h",), type="hidden"),
            Field("unicode", ("Привет 👋 ü",), label="Größe"),
            Field("jid", ("a@b", "c@d"), type="jid-multi"),
        ),
    ),
    Form(form_type=FORM_FIELDS, fields=tuple(Field(f"f{i}", (str(i),)) for i in range(40))),
]


@pytest.mark.parametrize("form", ROUND_TRIP_FORMS)
def test_form_round_trip(form: Form) -> None:
    text = forms.to_xml(form)
    assert forms.from_xml(text) == form
    assert forms.to_xml(forms.from_xml(text)) == text


def test_form_from_xml_rejects_garbage() -> None:
    with pytest.raises(PayloadError):
        forms.from_xml("<x")
    with pytest.raises(PayloadError):
        forms.from_xml(f'<x xmlns="{NS_DATA}" type="result"/>')


def test_form_element_puts_form_type_first() -> None:
    for form_type in ("submit", "result", "form"):
        x = FIELDS.element(form_type)
        assert x.get("type") == form_type
        first = x[0]
        assert first.get("var") == "FORM_TYPE" and first.get("type") == "hidden"


def test_parse_form_max_fields() -> None:
    x = parse(form_xml(n_fields(3)))
    assert len(read_form(x, FORM_FIELDS, max_fields=3).fields) == 3
    with pytest.raises(PayloadError, match="more than 2 fields"):
        read_form(x, FORM_FIELDS, max_fields=2)


# -- message payloads and texts ------------------------------------------------------


def test_fanout_text_without_form() -> None:
    assert fanout_text("S", "B", None) == (
        "Request: S\n\nB\n\n(Asked of several companies. Reply here to answer; "
        "your reply reaches only this customer.)"
    )


def test_fanout_text_field_kinds() -> None:
    form = Form(
        form_type=FORM_FIELDS,
        fields=(
            Field("secret", ("x",), type="hidden"),
            Field("nothing"),
            Field("fitted", ("1",), label="Fitted", type="boolean"),
            Field("used", ("false",), type="boolean"),
            Field("sizes", ("a", "b"), label="Sizes", type="list-multi"),
            Field("notes", ("one", "two"), label="Notes", type="text-multi"),
        ),
    )
    text = fanout_text("S", "B", form)
    assert "Fitted: yes\nused: no\nSizes: a, b\nNotes: one\ntwo\n\n(Asked" in text
    assert "secret" not in text and "nothing" not in text
    only_hidden = Form(form_type=FORM_FIELDS, fields=(Field("secret", ("x",), type="hidden"),))
    assert fanout_text("S", "B", only_hidden) == fanout_text("S", "B", None)


def test_payload_strings_escape() -> None:
    nasty = 'a<b>&"c"\r\nd'
    el = parse(
        fanout_payload(
            RID,
            nasty,
            EXPIRES,
            Form(form_type=FORM_FIELDS, fields=(Field(nasty, (nasty,), nasty),)),
        )
    )
    got = parse_fanout(el)
    assert got.subject == nasty
    assert got.form == Form(form_type=FORM_FIELDS, fields=(Field(nasty, (nasty,), nasty),))
    message = parse(status_message('x"&<y>', "anna@localhost", 'i"d', RID, [(nasty, "seen")]))
    assert message.get("from") == 'x"&<y>' and message.get("id") == 'i"d'
    assert parse_status(payload_of(message)) == (RID, ((nasty, "seen"),))
    declined = parse(decline_payload(RID, nasty))
    assert parse_decline(declined) == 'a<b>&"c"\r\nd'.strip()


def test_status_message_shape() -> None:
    message = built_status()
    assert message.tag == "message"
    assert message.get("type") == "headline"
    assert message.find("body") is None


def test_closed_texts() -> None:
    # Actions of the customer's (/me), not words they typed (issue 13).
    assert closed_text(True, False) == "/me closed this request and accepted your offer."
    assert closed_text(True, True) == closed_text(True, False)
    assert closed_text(False, True) == (
        "/me closed this request and chose another company's offer."
    )
    assert closed_text(False, False) == "/me closed this request."
    assert parse_closed(parse(closed_payload(RID, False))) is False


def test_request_view_round_trips() -> None:
    views = [
        dataclasses.replace(CREATE_VIEW, duplicate=True),
        CLOSE_VIEW,
        dataclasses.replace(GET_VIEW, state="expired", targets=()),
        dataclasses.replace(
            GET_VIEW,
            targets=(TargetView(SOUTH, "declined", updated=CREATED),),
        ),
    ]
    for view in views:
        assert parse_request_view(request_element(view)) == view
        assert_valid(as_string(request_element(view)))
    listed = requests_element(views, 40, 100)
    assert_valid(as_string(listed))
    page = parse_requests(listed)
    assert page.first_index == 40 and page.count == 100
    assert [v.id for v in page.views] == [v.id for v in views]
    assert all(v.body is None and v.form is None and not v.duplicate for v in page.views)
    rsm = listed.find(f"{{{NS_RSM}}}set")
    assert rsm is not None
    assert [c.tag.split("}")[1] for c in rsm] == ["first", "last", "count"]


# -- ids and timestamps ------------------------------------------------------------


def test_new_request_ids() -> None:
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    for rid in ids:
        assert is_request_id(rid)
        assert len(rid) == 21 and rid[0] == "r"
        assert set(rid[1:]) <= set("abcdefghijklmnopqrstuvwxyz234567")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "r",
        RID[:-1],
        RID + "a",
        "x" + RID[1:],
        RID.upper(),
        "r0bcdefghijklmnopqrst",
        "r8bcdefghijklmnopqrst",
        RID + "\n",
        " " + RID,
    ],
)
def test_not_request_ids(text: str) -> None:
    assert not is_request_id(text)


def test_timestamps() -> None:
    novosibirsk = dt.timezone(dt.timedelta(hours=7))
    when = dt.datetime(2026, 11, 28, 17, 0, 0, 999999, tzinfo=novosibirsk)
    assert stamp(when) == "2026-11-28T10:00:00Z"
    with pytest.raises(ValueError):
        stamp(dt.datetime(2026, 11, 28, 10, 0))  # naive
    assert parse_stamp("2026-11-29T09:00:00+07:00") == dt.datetime(
        2026, 11, 29, 2, 0, tzinfo=dt.UTC
    )
    for bad in ("2026-11-28", "2026-11-28T10:00Z", "2026-13-28T10:00:00Z", "yesterday"):
        with pytest.raises(PayloadError):
            parse_stamp(bad)


def test_payload_error_is_a_value_error() -> None:
    assert issubclass(PayloadError, ValueError)


def test_extension_imports_neither_storage_nor_component() -> None:
    for path in (ROOT / "extensions" / "request").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                assert top not in ("storage", "component"), f"{path.name} imports {name}"
