"""The directory's IQs without sockets: search forms, result pages, cards, extended info.

Stanza tests (exact XML in, exact XML out) of :mod:`component.features.directory.iq`
and of the search's pages (:mod:`component.search`, over the fake search store
that tests/contracts/test_search.py holds to PostgreSQL's answers), then the
handlers fed with IQs, as slixmpp would call them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import re
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from slixmpp.exceptions import XMPPError
from slixmpp.stanza import Iq
from slixmpp.xmlstream.tostring import tostring

from component.config import ComponentSettings
from component.directory import Directory
from component.errors import condition_for
from component.features.directory import cards
from component.features.directory import iq as d
from component.features.directory.response_times import ResponseTimes
from component.i18n import translate
from component.routing.commands import Target
from component.routing.iq import IqHandlers
from component.routing.outbox import Outbox
from component.routing.rsm import NS_RSM
from component.search import MAX_EXAMINED, DirectorySearch, Hit, SearchQuery
from component.xmpp import ComponentStream
from extensions.forms import Column, ResultForm, Table
from extensions.xml import PayloadError, to_xml
from storage.errors import Unavailable
from storage.models import Company, CompanySearch, SearchCursor
from tests.unit.fakes import FakeConversations, FakeDirectorySearchStore, FakeDirectoryStore
from tests.unit.test_forms import form_tree
from tests.unit.test_inputs import load_import

NS = "jabber:component:accept"
DOMAIN = "biz.localhost"
DATA = "jabber:x:data"
#: A Wednesday, 12:00 UTC.
NOON = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def company(n: int, slug: str, name: str, **fields: object) -> Company:
    base = Company(n, slug, name, None, "UTC", None, None, None)
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]


PIZZA = company(
    1,
    "pizza-napoli",
    "Pizza Napoli",
    email="info@pizza-napoli.example",
    timezone="Asia/Novosibirsk",
    hours="Mo-Fr 09:00-21:00; Sa-Su 11:00-23:00",
    category="restaurant",
    city="Novosibirsk",
    phone="+7 383 555-01-00",
    url="https://pizza-napoli.example/",
    address="Krasny prospekt 25",
)
VELO = company(
    2, "velo", "Velo Sibir", category="Bike-Shop", city="novosibirsk", hours="Tu-Sa 13:00-19:00"
)
APTEKA = company(3, "apteka", "Apteka  Tomsk", category="pharmacy", city="Tomsk")
BARE = company(4, "bare", "bare shop")


def canonical(xml: str | ET.Element) -> str:
    el = ET.fromstring(xml) if isinstance(xml, str) else xml
    return ET.canonicalize(ET.tostring(el, encoding="unicode"), strip_text=True)


# -- pages ----------------------------------------------------------------------------


def searching(*companies: Company, now: dt.datetime = NOON) -> DirectorySearch:
    return DirectorySearch(
        FakeDirectorySearchStore(companies), Directory(FakeDirectoryStore()), lambda: now
    )


@pytest.mark.asyncio
async def test_open_now_is_judged_in_each_companys_time_zone() -> None:
    search = searching(PIZZA, VELO, APTEKA, BARE)
    found = await search.find(SearchQuery(), limit=10)
    assert found is not None
    assert [h.company.slug for h in found.hits] == ["apteka", "bare", "pizza-napoli", "velo"]
    # 19:00 in Novosibirsk (open till 21:00); Velo opens at 13:00 UTC.
    assert [h.open_now for h in found.hits] == [True, True, True, False]
    assert (found.index, found.count, found.more) == (0, 4, False)
    only_open = await search.find(SearchQuery(open_now=True), limit=10)
    assert only_open is not None
    assert [h.company.slug for h in only_open.hits] == ["apteka", "bare", "pizza-napoli"]
    assert (only_open.index, only_open.count) == (None, None)  # not counted


@pytest.mark.asyncio
async def test_pages_of_open_companies_skip_the_closed_ones() -> None:
    closed = "Mo-Su 00:00-00:01"  # closed at noon, every day
    many = [
        company(n, f"c{n:03d}", f"Company {n:03d}", hours=None if n % 3 == 0 else closed)
        for n in range(300)
    ]
    search = searching(*many)
    found = await search.find(SearchQuery(open_now=True), limit=20)
    assert found is not None
    assert [h.company.slug for h in found.hits] == [f"c{n:03d}" for n in range(0, 60, 3)]
    assert found.more
    after = await search.find(
        SearchQuery(open_now=True), limit=20, cursor=SearchCursor(after="c057")
    )
    assert after is not None
    assert [h.company.slug for h in after.hits] == [f"c{n:03d}" for n in range(60, 120, 3)]
    before = await search.find(
        SearchQuery(open_now=True), limit=3, cursor=SearchCursor(before="c060")
    )
    assert before is not None
    assert [h.company.slug for h in before.hits] == ["c051", "c054", "c057"]


@pytest.mark.asyncio
async def test_a_page_of_open_companies_looks_at_a_bounded_number() -> None:
    closed = "Mo-Su 00:00-00:01"
    many = [company(n, f"c{n:04d}", f"Company {n:04d}", hours=closed) for n in range(2000)]
    many.append(company(9999, "z-open", "Zz open"))
    found = await searching(*many).find(SearchQuery(open_now=True), limit=20)
    assert found is not None
    assert found.hits == [] and found.more  # looked at MAX_EXAMINED, then gave up
    store = FakeDirectorySearchStore(many)
    looked: list[int] = []
    page = store.page

    async def counting(*args: object) -> list[Company] | None:
        got = await page(*args)  # type: ignore[arg-type]
        looked.append(len(got or []))
        return got

    store.page = counting  # type: ignore[method-assign]
    search = DirectorySearch(store, Directory(FakeDirectoryStore()), lambda: NOON)
    await search.find(SearchQuery(open_now=True), limit=20)
    assert sum(looked) == MAX_EXAMINED


# -- XEP-0055 forms ---------------------------------------------------------------------

SEARCH_FORM = f"""
<query xmlns="jabber:iq:search">
  <instructions>{d.SEARCH_INSTRUCTIONS}</instructions>
  <x xmlns="jabber:x:data" type="form">
    <title>Find a company</title>
    <instructions>{d.SEARCH_INSTRUCTIONS}</instructions>
    <field var="FORM_TYPE" type="hidden"><value>jabber:iq:search</value></field>
    <field var="name" type="text-single" label="Name">
      <desc>Any part of the company's name</desc>
    </field>
    <field var="category" type="list-single" label="Category">
      <value>*</value>
      <option label="Any category"><value>*</value></option>
      <option label="pharmacy"><value>pharmacy</value></option>
      <option label="restaurant"><value>restaurant</value></option>
    </field>
    <field var="city" type="list-single" label="City">
      <value>*</value>
      <option label="Any city"><value>*</value></option>
      <option label="Novosibirsk"><value>Novosibirsk</value></option>
      <option label="Tomsk"><value>Tomsk</value></option>
    </field>
    <field var="open-now" type="boolean" label="Open now"><value>false</value></field>
  </x>
</query>
"""


@pytest.mark.asyncio
async def test_search_form_is_built_from_the_directory() -> None:
    known = await searching(PIZZA, APTEKA, BARE).known_values()
    assert canonical(d.search_form(known)) == canonical(SEARCH_FORM)


SUBMITTED = """
<x xmlns="jabber:x:data" type="submit">
  <field var="FORM_TYPE" type="hidden"><value>jabber:iq:search</value></field>
  <field var="name"><value> napoli </value></field>
  <field var="category"><value>*</value></field>
  <field var="city"><value>Novosibirsk</value></field>
  <field var="open-now"><value>1</value></field>
</x>
"""


def test_parse_a_submitted_form() -> None:
    query = d.parse_search(ET.fromstring(SUBMITTED))
    assert query == SearchQuery(CompanySearch(name="napoli", city="Novosibirsk"), open_now=True)
    # Only the fields a client filled in; no FORM_TYPE is fine too.
    empty = ET.fromstring(f'<x xmlns="{DATA}" type="submit"/>')
    assert d.parse_search(empty) == SearchQuery()


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (None, "Submit the search form"),
        (f'<x xmlns="{DATA}" type="form"/>', "type 'submit'"),
        (f'<x xmlns="{DATA}" type="result"/>', "type 'submit'"),
        (
            f'<x xmlns="{DATA}" type="submit"><field var="FORM_TYPE"><value>urn:x</value></field>'
            "</x>",
            "not a jabber:iq:search form",
        ),
        (
            f'<x xmlns="{DATA}" type="submit"><field var="open-now"><value>maybe</value></field>'
            "</x>",
            "'Open now': 'maybe' is not a boolean",
        ),
        (
            f'<x xmlns="{DATA}" type="submit"><field var="name"><value>{"x" * 101}</value>'
            "</field></x>",
            "longer than 100",
        ),
        (
            f'<x xmlns="{DATA}" type="submit"><field var="city"><value>A</value><value>B</value>'
            "</field></x>",
            "'City' takes one value",
        ),
        (
            f'<x xmlns="{DATA}" type="submit"><field var="name"><value>a</value></field>'
            '<field var="name"><value>b</value></field></x>',
            "given twice",
        ),
    ],
)
def test_malformed_forms_are_bad_requests(form: str | None, message: str) -> None:
    with pytest.raises(PayloadError if form else d.BadRequest) as refused:
        d.parse_search(ET.fromstring(form) if form else None)
    assert condition_for(refused.value)[1] == "bad-request"
    assert message in str(refused.value)


RESULTS = """
<query xmlns="jabber:iq:search">
  <x xmlns="jabber:x:data" type="result">
    <reported>
      <field var="jid" type="jid-single" label="Address"/>
      <field var="name" type="text-single" label="Name"/>
      <field var="category" type="text-single" label="Category"/>
      <field var="city" type="text-single" label="City"/>
      <field var="open-now" type="boolean" label="Open now"/>
    </reported>
    <item>
      <field var="jid"><value>bare@biz.localhost</value></field>
      <field var="name"><value>bare shop</value></field>
      <field var="category"/>
      <field var="city"/>
      <field var="open-now"><value>true</value></field>
    </item>
    <item>
      <field var="jid"><value>pizza-napoli@biz.localhost</value></field>
      <field var="name"><value>Pizza Napoli</value></field>
      <field var="category"><value>restaurant</value></field>
      <field var="city"><value>Novosibirsk</value></field>
      <field var="open-now"><value>true</value></field>
    </item>
  </x>
  <set xmlns="http://jabber.org/protocol/rsm">
    <first index="1">bare@biz.localhost</first>
    <last>pizza-napoli@biz.localhost</last>
    <count>3</count>
  </set>
</query>
"""


@pytest.mark.asyncio
async def test_a_page_of_results() -> None:
    rsm = ET.fromstring(
        '<set xmlns="http://jabber.org/protocol/rsm"><max>2</max>'
        "<after>apteka@biz.localhost</after></set>"
    )
    found, out = await searching(PIZZA, APTEKA, BARE).paged(SearchQuery(), rsm, 50, DOMAIN)
    assert canonical(d.search_results(found.hits, out, DOMAIN)) == canonical(RESULTS)


def _rsm(inner: str) -> ET.Element:
    return ET.fromstring(f'<set xmlns="http://jabber.org/protocol/rsm">{inner}</set>')


KEYS = [company(n, f"k{n}", f"Key {n}") for n in range(10)]


@pytest.mark.parametrize(
    ("rsm", "window"),
    [
        (None, (0, 4)),  # no request: the first page of at most the limit
        ("", (0, 4)),
        ("<max>3</max>", (0, 3)),
        ("<max>100</max>", (0, 4)),  # never more than the limit
        ("<max>0</max>", (0, 0)),  # the count only
        ("<max>3</max><after>k2@biz.localhost</after>", (3, 6)),
        ("<max>3</max><after>k8@biz.localhost</after>", (9, 10)),
        ("<max>3</max><after>k9@biz.localhost</after>", (10, 10)),
        ("<max>3</max><before/>", (7, 10)),  # the last page
        ("<max>3</max><before>k5@biz.localhost</before>", (2, 5)),
        ("<max>3</max><before>k1@biz.localhost</before>", (0, 1)),
        ("<max>2</max><index>4</index>", (4, 6)),
        ("<max>2</max><index>40</index>", (10, 10)),
    ],
)
@pytest.mark.asyncio
async def test_result_set_windows(rsm: str | None, window: tuple[int, int]) -> None:
    found, out = await searching(*KEYS).paged(
        SearchQuery(), None if rsm is None else _rsm(rsm), 4, DOMAIN
    )
    start, end = window
    assert [h.company.slug for h in found.hits] == [f"k{n}" for n in range(start, end)]
    if rsm is None:
        assert out is not None  # more than a page: it says so, unasked
    assert out is not None
    assert out.findtext(f"{{{NS_RSM}}}count") == "10"
    first = out.find(f"{{{NS_RSM}}}first")
    if start == end:
        assert first is None
    else:
        assert first is not None and first.get("index") == str(start)
        assert first.text == f"k{start}@biz.localhost"
        assert out.findtext(f"{{{NS_RSM}}}last") == f"k{end - 1}@biz.localhost"


@pytest.mark.parametrize(
    ("rsm", "condition"),
    [
        ("<after>nobody@biz.localhost</after>", "item-not-found"),
        ("<before>nobody@biz.localhost</before>", "item-not-found"),
        ("<after>k1@elsewhere.example</after>", "item-not-found"),
        ("<after>k1+abcdefghij@biz.localhost</after>", "item-not-found"),
        ("<max>many</max>", "bad-request"),
        ("<index>first</index>", "bad-request"),
    ],
)
@pytest.mark.asyncio
async def test_result_set_errors(rsm: str, condition: str) -> None:
    with pytest.raises(XMPPError) as refused:
        await searching(*KEYS).paged(SearchQuery(), _rsm(rsm), 4, DOMAIN)
    assert refused.value.condition == condition


@pytest.mark.asyncio
async def test_everything_in_one_page_needs_no_set() -> None:
    found, out = await searching(*KEYS).paged(SearchQuery(), None, 50, DOMAIN)
    assert len(found.hits) == 10 and out is None


@pytest.mark.asyncio
async def test_more_than_a_page_says_so_without_a_request() -> None:
    many = [company(n, f"c{n:03d}", f"Company {n:03d}") for n in range(60)]
    found, rsm = await searching(*many).paged(SearchQuery(), None, d.MAX_SEARCH_PAGE, DOMAIN)
    out = ET.fromstring(d.search_results(found.hits, rsm, DOMAIN))
    assert len(out.findall(f"{{{DATA}}}x/{{{DATA}}}item")) == d.MAX_SEARCH_PAGE
    assert (
        out.findtext("{http://jabber.org/protocol/rsm}set/{http://jabber.org/protocol/rsm}count")
        == "60"
    )


# -- the answer on the wire ----------------------------------------------------------------

#: Names, categories and cities escaping must keep, in both alphabets.
ODD = [
    company(1, "a-b", 'A & B <"shop">', category="tyres & more", city="Омск"),
    company(
        2,
        "shina",
        "Шина\nКолесо\t1 «Ёж»",  # noqa: RUF001
        category="шиномонтаж",
        city="Новосибирск",
        timezone="Asia/Novosibirsk",
        hours="Mo-Fr 09:00-18:00",  # 19:00 there at NOON: closed
    ),
    company(3, "plain", "Plain"),  # no category, no city
    company(4, "quote", 'It\'s "the" <best> >', category='"q"', city="Berlin & Co"),
]
ALL = (
    '<x xmlns="jabber:x:data" type="submit">'
    '<field var="FORM_TYPE" type="hidden"><value>jabber:iq:search</value></field></x>'
)


def _reference(request: ET.Element, found: list[Hit], rsm: ET.Element | None, lang: str) -> Iq:
    """The answer as it was built before it was written as a string: slixmpp's
    reply to the request, the result form as an element tree (XEP-0004 §3.4)."""
    stream = ComponentStream(ComponentSettings(domain=DOMAIN))
    reply = Iq(stream, request).reply(clear=True)
    columns = [Column(c.var, translate(c.label, lang), c.type) for c in d.RESULT_COLUMNS]
    rows = [
        {
            "jid": f"{hit.company.slug}@{DOMAIN}",
            "name": hit.company.name,
            "category": (hit.company.category,) if hit.company.category else (),
            "city": (hit.company.city,) if hit.company.city else (),
            "open-now": "true" if hit.open_now else "false",
        }
        for hit in found
    ]
    query = ET.SubElement(reply.xml, f"{{{d.NS_SEARCH}}}query")
    query.append(form_tree(ResultForm(table=Table(columns, rows))))
    if rsm is not None:
        query.append(rsm)
    return reply


@pytest.mark.parametrize("lang", ["ru", "en"])
@pytest.mark.parametrize("page", ["", "<max>3</max>"])
@pytest.mark.asyncio
async def test_a_search_answer_is_the_reply_slixmpp_wrote(lang: str, page: str) -> None:
    """Written as a string through the Outbox, the answer is what slixmpp's reply
    object with the result form as an element tree was written as: byte for byte
    as ComponentStream.send wrote it, and as slixmpp's own serialiser would."""
    written: list[str] = []
    search = searching(*ODD)
    handlers = d.DirectoryIqHandlers(
        domain=DOMAIN,
        directory=Directory(FakeDirectoryStore()),
        search=search,
        conversations=FakeConversations(),
        response_times=ResponseTimes(FakeResponseTimes()),
        outbox=Outbox(written.append),
        now=lambda: NOON,
    )
    rsm = f'<set xmlns="{NS_RSM}">{page}</set>' if page else ""
    request = ET.fromstring(
        f'<iq xmlns="{NS}" type="set" id="q&amp;1" xml:lang="{lang}" '
        f'from="anna@localhost/phone" to="{DOMAIN}">'
        f'<query xmlns="{d.NS_SEARCH}">{ALL}{rsm}</query></iq>'
    )
    await handlers.search(Iq(_Stream(), request))
    [answer] = written

    found, out = await search.paged(SearchQuery(), request.find(f".//{{{NS_RSM}}}set"), 50, DOMAIN)
    assert len(found.hits) == (3 if page else 4) and (out is not None) == bool(page)
    reference = _reference(request, found.hits, out, lang)
    # What ComponentStream.send wrote for the reply object (extensions.xml.to_xml),
    # and what slixmpp's own serialiser writes (the same but for carriage
    # returns, which it leaves raw: none here).
    before = to_xml(reference.xml, within=NS)
    slixmpp = tostring(reference.xml, xmlns=NS, stream=reference.stream, top_level=True)

    def canonical_stanza(stanza: str) -> str:
        return ET.canonicalize(f'<w xmlns="{NS}">{stanza}</w>')

    assert answer == before
    assert canonical_stanza(answer) == canonical_stanza(before) == canonical_stanza(slixmpp)
    form = ET.fromstring(answer).find(f"{{{d.NS_SEARCH}}}query/{{{DATA}}}x")
    assert form is not None
    names = [
        f.findtext(f"{{{DATA}}}value") for f in form.iterfind(f"*/{{{DATA}}}field[@var='name']")
    ]
    assert names[1:] == [h.company.name for h in found.hits] and 'A & B <"shop">' in names
    assert form.find(f"{{{DATA}}}reported/{{{DATA}}}field[@var='open-now']").get("label") == (
        "Открыто сейчас" if lang == "ru" else "Open now"
    )


@pytest.mark.asyncio
async def test_an_answer_too_large_for_ejabberd_is_not_written() -> None:
    written: list[str] = []
    handlers = d.DirectoryIqHandlers(
        domain=DOMAIN,
        directory=Directory(FakeDirectoryStore()),
        search=searching(*ODD),
        conversations=FakeConversations(),
        response_times=ResponseTimes(FakeResponseTimes()),
        outbox=Outbox(written.append, max_stanza_size=1000),
        now=lambda: NOON,
    )
    request = ET.fromstring(
        f'<iq xmlns="{NS}" type="set" id="q1" from="anna@localhost/phone" to="{DOMAIN}">'
        f'<query xmlns="{d.NS_SEARCH}">{ALL}</query></iq>'
    )
    await handlers.search(Iq(_Stream(), request))  # logged and dropped, never raised
    assert written == []


# -- XEP-0292 and XEP-0128 ----------------------------------------------------------------

VCARD4 = """
<vcard xmlns="urn:ietf:params:xml:ns:vcard-4.0">
  <fn><text>Pizza Napoli</text></fn>
  <kind><text>org</text></kind>
  <categories><text>restaurant</text></categories>
  <adr>
    <parameters><type><text>work</text></type></parameters>
    <pobox/><ext/><street>Krasny prospekt 25</street><locality>Novosibirsk</locality>
    <region/><code/><country/>
  </adr>
  <tel>
    <parameters><type><text>work</text><text>voice</text></type></parameters>
    <uri>tel:+7-383-555-01-00</uri>
  </tel>
  <email>
    <parameters><type><text>work</text></type></parameters>
    <text>info@pizza-napoli.example</text>
  </email>
  <url><uri>https://pizza-napoli.example/</uri></url>
  <impp><uri>xmpp:pizza-napoli@biz.localhost</uri></impp>
  <tz><text>Asia/Novosibirsk</text></tz>
  <note><text>Opening hours: Mo-Fr 09:00-21:00; Sa-Su 11:00-23:00
Time zone: Asia/Novosibirsk</text></note>
</vcard>
"""


def test_company_vcard4() -> None:
    assert canonical(cards.company_vcard4(PIZZA, DOMAIN)) == canonical(VCARD4)
    bare = cards.company_vcard4(BARE, DOMAIN)
    assert [child.tag.rsplit("}", 1)[1] for child in bare] == ["fn", "kind", "impp", "tz", "note"]


@pytest.mark.parametrize(
    ("phone", "uri"),
    [
        ("+7 383 555-01-00", "tel:+7-383-555-01-00"),
        ("+49 (30) 1234.567", "tel:+49-30-1234-567"),
        ("+4930123", "tel:+4930123"),
        ("8 383 555 01 00", None),  # local: shown as text
    ],
)
def test_tel_uris(phone: str, uri: str | None) -> None:
    assert cards.tel_uri(phone) == uri
    tel = cards.company_vcard4(dataclasses.replace(BARE, phone=phone), DOMAIN).find(
        f"{{{cards.NS_VCARD4}}}tel"
    )
    assert tel is not None
    value = tel.find(f"{{{cards.NS_VCARD4}}}uri" if uri else f"{{{cards.NS_VCARD4}}}text")
    assert value is not None and value.text == (uri or phone)


COMPANY_INFO_CLOSED = """
<x xmlns="jabber:x:data" type="result">
  <field var="FORM_TYPE" type="hidden"><value>urn:orgchat:company:0</value></field>
  <field var="category" type="text-single" label="Category"><value>Bike-Shop</value></field>
  <field var="city" type="text-single" label="City"><value>novosibirsk</value></field>
  <field var="timezone" type="text-single" label="Time zone"><value>UTC</value></field>
  <field var="hours" type="text-single" label="Opening hours"><value>Mo 09:00-12:00</value></field>
  <field var="open-now" type="boolean" label="Open now"><value>false</value></field>
  <field var="next-opening" type="text-single" label="Opens at">
    <value>2026-11-30T09:00:00Z</value>
  </field>
  <field var="first-response" type="text-single" label="Median first response (seconds)">
    <value>95</value>
  </field>
</x>
"""


def test_company_info_form() -> None:
    closed = dataclasses.replace(VELO, hours="Mo 09:00-12:00")
    form = cards.company_info(closed, NOON, 94.6).element()
    assert canonical(form) == canonical(COMPANY_INFO_CLOSED)
    open_form = cards.company_info(BARE, NOON, None).element()
    fields = {f.get("var"): f.findtext(f"{{{DATA}}}value") for f in open_form}
    assert fields == {"FORM_TYPE": cards.NS_COMPANY_INFO, "timezone": "UTC", "open-now": "true"}
    # Next opening in another time zone is still written in UTC: at 22:00 UTC
    # it is 05:00 on Thursday in Novosibirsk, which opens at 09:00 (02:00 UTC).
    pizza = cards.company_info(PIZZA, NOON + dt.timedelta(hours=10), None).element()
    opens = [f for f in pizza if f.get("var") == "next-opening"]
    assert [f.findtext(f"{{{DATA}}}value") for f in opens] == ["2026-11-26T02:00:00Z"]


# -- the handlers -----------------------------------------------------------------------------


class _Stream:
    default_ns = NS


class FakeResponseTimes:
    """ResponseTimeStore stand-in: a fixed answer, a delay, or a failure."""

    def __init__(self, answer: float | None = 42.0, delay: float = 0.0) -> None:
        self.answer = answer
        self.delay = delay
        self.fail = False
        self.calls: list[tuple[int, dt.datetime, float]] = []

    async def median_first_response(
        self, company_id: int, *, since: dt.datetime, silence_s: float
    ) -> float | None:
        self.calls.append((company_id, since, silence_s))
        await asyncio.sleep(self.delay)
        if self.fail:
            raise Unavailable("fake outage")
        return self.answer


async def _handlers(
    monkeypatch: pytest.MonkeyPatch, store: FakeResponseTimes
) -> tuple[d.DirectoryIqHandlers, IqHandlers, list[ET.Element]]:
    sent: list[ET.Element] = []
    monkeypatch.setattr(Iq, "send", lambda self, *a, **k: sent.append(self.xml))
    # What the handlers write as strings (search answers), read back as elements.
    outbox = Outbox(lambda data: sent.append(ET.fromstring(data)))
    directory_store = FakeDirectoryStore()
    for c in (PIZZA, VELO, APTEKA):
        directory_store.companies[c.slug] = c
        directory_store.agents[c.id] = []
    directory = Directory(directory_store)
    await directory.reload(None)
    search = DirectorySearch(
        FakeDirectorySearchStore((PIZZA, VELO, APTEKA)), directory, lambda: NOON
    )
    directory_iq = d.DirectoryIqHandlers(
        domain=DOMAIN,
        directory=directory,
        search=search,
        conversations=FakeConversations(),
        response_times=ResponseTimes(store, wait_s=0.2),
        outbox=outbox,
        now=lambda: NOON,
    )
    iq_handlers = IqHandlers(
        domain=DOMAIN,
        directory=directory,
        search=search,
        conversations=FakeConversations(),
        disco_extensions=[directory_iq],
    )
    return directory_iq, iq_handlers, sent


async def _call(
    handler: object, to: str, payload: str, itype: str, sent: list[ET.Element]
) -> ET.Element:
    iq = Iq(
        _Stream(),
        ET.fromstring(
            f'<iq xmlns="{NS}" type="{itype}" id="q1" from="anna@localhost/phone" to="{to}">'
            f"{payload}</iq>"
        ),
    )
    sent.clear()
    try:
        await handler(iq)  # type: ignore[operator]
    except Exception as exc:  # what slixmpp's CoroutineCallback does
        iq.exception(exc)
    assert len(sent) == 1, sent
    return sent[0]


def _condition(reply: ET.Element) -> str:
    assert reply.get("type") == "error", ET.tostring(reply, encoding="unicode")
    error = next(el for el in reply if el.tag.endswith("}error"))
    return next(
        el.tag.rsplit("}", 1)[1]
        for el in error
        if "xmpp-stanzas" in el.tag and "text" not in el.tag
    )


@pytest.mark.asyncio
async def test_search_iqs(monkeypatch: pytest.MonkeyPatch) -> None:
    directory_iq, _, sent = await _handlers(monkeypatch, FakeResponseTimes())
    search_ns = f'xmlns="{d.NS_SEARCH}"'
    form = await _call(directory_iq.search, DOMAIN, f"<query {search_ns}/>", "get", sent)
    assert form.get("type") == "result"
    assert form.find(f"{{{d.NS_SEARCH}}}query/{{{DATA}}}x") is not None

    submitted = f"<query {search_ns}>{SUBMITTED}</query>"
    found = await _call(directory_iq.search, DOMAIN, submitted, "set", sent)
    items = found.findall(f"{{{d.NS_SEARCH}}}query/{{{DATA}}}x/{{{DATA}}}item")
    assert len(items) == 1  # Pizza Napoli, open at 19:00 on a Wednesday in Novosibirsk

    for to in ("pizza-napoli@biz.localhost", "pizza-napoli+abcdefghij@biz.localhost"):
        refused = await _call(directory_iq.search, to, submitted, "set", sent)
        assert _condition(refused) == "service-unavailable"
    unknown = await _call(directory_iq.search, "nobody@biz.localhost", submitted, "set", sent)
    assert _condition(unknown) == "item-not-found"
    bad = await _call(directory_iq.search, DOMAIN, f"<query {search_ns}/>", "set", sent)
    assert _condition(bad) == "bad-request"


@pytest.mark.asyncio
async def test_disco_info_carries_the_extensions(monkeypatch: pytest.MonkeyPatch) -> None:
    times = FakeResponseTimes(answer=61.4)
    directory_iq, iq_handlers, sent = await _handlers(monkeypatch, times)
    disco = '<query xmlns="http://jabber.org/protocol/disco#info"/>'
    service = await _call(iq_handlers.disco_info, DOMAIN, disco, "get", sent)
    features = {
        f.get("var") for f in service.iter("{http://jabber.org/protocol/disco#info}feature")
    }
    assert {d.NS_SEARCH, cards.NS_VCARD4} <= features
    assert service.find(f".//{{{DATA}}}x") is None

    info = await _call(iq_handlers.disco_info, "velo@biz.localhost", disco, "get", sent)
    features = {f.get("var") for f in info.iter("{http://jabber.org/protocol/disco#info}feature")}
    assert cards.NS_VCARD4 in features and d.NS_SEARCH not in features
    [form] = info.iter(f"{{{DATA}}}x")
    fields = {f.get("var"): f.findtext(f"{{{DATA}}}value") for f in form}
    assert fields["first-response"] == "61"
    assert (fields["open-now"], fields["next-opening"]) == ("false", "2026-11-25T13:00:00Z")
    [(company_id, since, silence)] = times.calls
    assert (company_id, silence) == (VELO.id, 3600.0)
    assert dt.datetime.now(dt.UTC) - since > dt.timedelta(days=29)
    # vcard-temp only: a conversation's card is its customer's name, for agents.
    assert directory_iq.features(Target.CONVERSATION) == (cards.NS_VCARD,)
    assert await directory_iq.forms(Target.CONVERSATION, VELO) == ()


@pytest.mark.asyncio
async def test_vcard4_iqs(monkeypatch: pytest.MonkeyPatch) -> None:
    directory_iq, _, sent = await _handlers(monkeypatch, FakeResponseTimes())
    ask = f'<vcard xmlns="{cards.NS_VCARD4}"/>'
    card = await _call(directory_iq.vcard4, "pizza-napoli@biz.localhost", ask, "get", sent)
    [vcard] = card
    assert canonical(vcard) == canonical(VCARD4)
    pep = (
        '<pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="urn:xmpp:vcard4"/></pubsub>'
    )
    item = await _call(directory_iq.pep_items, "pizza-napoli@biz.localhost", pep, "get", sent)
    found = item.find(
        "{http://jabber.org/protocol/pubsub}pubsub/{http://jabber.org/protocol/pubsub}items"
        "/{http://jabber.org/protocol/pubsub}item"
    )
    assert found is not None and found.get("id") == "current"
    assert canonical(found[0]) == canonical(VCARD4)
    other = pep.replace("urn:xmpp:vcard4", "urn:xmpp:avatar:data")
    refused = await _call(directory_iq.pep_items, "pizza-napoli@biz.localhost", other, "get", sent)
    assert _condition(refused) == "item-not-found"
    wrong_item = pep.replace(
        'node="urn:xmpp:vcard4"/>', 'node="urn:xmpp:vcard4"><item id="x"/></items>'
    )
    refused = await _call(
        directory_iq.pep_items, "pizza-napoli@biz.localhost", wrong_item, "get", sent
    )
    assert _condition(refused) == "item-not-found"
    conversation = "pizza-napoli+abcdefghij@biz.localhost"
    assert _condition(await _call(directory_iq.vcard4, conversation, ask, "get", sent)) == (
        "service-unavailable"
    )


# -- the first-response cache ---------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.asyncio
async def test_response_times_are_cached() -> None:
    store, clock = FakeResponseTimes(answer=30.0), Clock()
    times = ResponseTimes(store, ttl_s=300, wait_s=1, clock=clock)
    assert await times.median(1) == 30.0
    store.answer = 60.0
    clock.now += 299
    assert await times.median(1) == 30.0
    assert len(store.calls) == 1
    clock.now += 2
    assert await times.median(1) == 60.0
    assert len(store.calls) == 2


@pytest.mark.asyncio
async def test_a_slow_measure_never_holds_disco_back() -> None:
    store, clock = FakeResponseTimes(answer=30.0, delay=0.2), Clock()
    times = ResponseTimes(store, ttl_s=300, wait_s=0.05, clock=clock)
    # Several requests at once: one query, none waits for it longer than wait_s.
    started = asyncio.get_running_loop().time()
    assert await asyncio.gather(times.median(7), times.median(7)) == [None, None]
    assert asyncio.get_running_loop().time() - started < 0.15
    assert len(store.calls) == 1
    await asyncio.sleep(0.25)  # the query completed in the background
    assert await times.median(7) == 30.0
    assert len(store.calls) == 1
    # Once stale, a slow new measure serves the previous figure meanwhile.
    store.answer = 90.0
    clock.now += 301
    assert await times.median(7) == 30.0
    await asyncio.sleep(0.25)
    assert await times.median(7) == 90.0


@pytest.mark.asyncio
async def test_a_failing_measure_leaves_the_figure_out() -> None:
    store, clock = FakeResponseTimes(answer=30.0), Clock()
    store.fail = True
    times = ResponseTimes(store, ttl_s=300, wait_s=1, clock=clock)
    assert await times.median(3) is None
    store.fail = False
    assert await times.median(3) == 30.0  # failures are not cached
    store.fail = True
    clock.now += 301
    assert await times.median(3) == 30.0  # the previous figure, while it fails


# -- docs/protocol.md -----------------------------------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
DEMO = Path(__file__).resolve().parents[2] / "demo" / "companies.json"
#: The time of the documented examples: Friday, 23:30 in Novosibirsk.
DOC_NOW = dt.datetime(2026, 11, 27, 16, 30, tzinfo=dt.UTC)


def _documented(iq_id: str, iq_type: str) -> ET.Element:
    """The payload of the documented IQ with this id and type."""
    for block in re.findall(r"```xml\n<!-- example -->\n(.*?)```", DOC.read_text(), re.S):
        for stanza in ET.fromstring(f'<stream xmlns="{NS}">{block}</stream>'):
            if stanza.get("id") == iq_id and stanza.get("type") == iq_type:
                [payload] = stanza
                return payload
    raise AssertionError(f"no <iq id={iq_id!r} type={iq_type!r}> in {DOC}")


def _demo() -> list[Company]:
    return [
        Company(
            n,
            c.slug,
            c.name,
            c.email,
            c.timezone,
            c.hours,
            c.category,
            c.city,
            c.accepts_requests,
            phone=c.phone,
            url=c.url,
            address=c.address,
        )
        for n, c in enumerate((item.company for item in load_import(DEMO, "localhost")), 1)
    ]


@pytest.mark.asyncio
async def test_the_documented_examples_are_what_the_code_does() -> None:
    demo = _demo()
    search = searching(*demo, now=DOC_NOW)
    form = d.search_form(await search.known_values())
    assert canonical(_documented("s1", "result")) == canonical(form)

    submitted = _documented("s2", "set")
    criteria = d.parse_search(submitted.find(f"{{{DATA}}}x"))
    found, rsm = await search.paged(criteria, submitted.find(f"{{{NS_RSM}}}set"), 50, DOMAIN)
    results = d.search_results(found.hits, rsm, DOMAIN)
    assert canonical(_documented("s2", "result")) == canonical(results)

    pizza = next(c for c in demo if c.slug == "pizza-napoli")
    assert canonical(_documented("vc4-1", "result")) == canonical(
        cards.company_vcard4(pizza, DOMAIN)
    )

    [form] = _documented("d1", "result").iter(f"{{{DATA}}}x")
    assert canonical(form) == canonical(cards.company_info(pizza, DOC_NOW, 372.0).element())
