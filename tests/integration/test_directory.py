"""The directory from standard clients: search, company cards, extended disco#info.

Real clients (slixmpp, and aioxmpp as an independent parser of the data
forms) against the session's `orgchat run` on the test domain: XEP-0055
search with XEP-0004 forms and XEP-0059 pages, XEP-0292 vCard4 (IQ and PEP
style, the latter through slixmpp's own XEP-0292 plugin), XEP-0054 vcard-temp
and XEP-0128 extended information with the first-response time measured from
the archive.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from collections.abc import Awaitable, Callable
from typing import Any
from xml.etree import ElementTree as ET

import asyncpg
import pytest

from component import hours
from tests.integration.clients import chat, child, is_message, local, new_id, text_of
from tests.integration.conftest import DOMAIN, RUN, MakeCompany, orgchat, register

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

SEARCH = "jabber:iq:search"
DATA = "jabber:x:data"
RSM = "http://jabber.org/protocol/rsm"
VCARD4 = "urn:ietf:params:xml:ns:vcard-4.0"
VCARD = "vcard-temp"
PUBSUB = "http://jabber.org/protocol/pubsub"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
COMPANY_INFO = "urn:orgchat:company:0"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"

ALWAYS_CLOSED = "Mo-Su off"


# -- helpers ----------------------------------------------------------------------


def xml(el: ET.Element) -> str:
    return ET.tostring(el, encoding="unicode")


async def iq(client: Any, to: str, payload: str, itype: str = "get") -> ET.Element:
    """Send an IQ and return its answer (result or error)."""
    iid = new_id()
    client.send_xml(f'<iq type="{itype}" to="{to}" id="{iid}">{payload}</iq>')
    return await client.inbox.expect(
        lambda el: local(el.tag) == "iq" and el.get("id") == iid and el.get("type") != "get"
    )


def error_of(reply: ET.Element) -> tuple[str | None, str | None]:
    """(defined condition, text) of an error reply."""
    assert reply.get("type") == "error", xml(reply)
    err = child(reply, "error")
    assert err is not None, xml(reply)
    conditions = [local(c.tag) for c in err if c.tag.startswith(f"{{{STANZAS}}}")]
    conditions = [c for c in conditions if c != "text"]
    return (conditions[0] if conditions else None), text_of(err, "text")


def form_fields(x: ET.Element) -> dict[str, ET.Element]:
    return {f.get("var", ""): f for f in x.findall(f"{{{DATA}}}field")}


def values(field: ET.Element) -> list[str]:
    return [v.text or "" for v in field.findall(f"{{{DATA}}}value")]


def submit(
    name: str = "",
    category: str = "*",
    city: str = "*",
    open_now: str = "false",
    rsm: str = "",
    form_type: str = SEARCH,
) -> str:
    """A filled-in search form as a client submits it."""
    fields = {"name": name, "category": category, "city": city, "open-now": open_now}
    body = "".join(
        f'<field var="{var}"><value>{value}</value></field>' for var, value in fields.items()
    )
    return (
        f'<query xmlns="{SEARCH}"><x xmlns="{DATA}" type="submit">'
        f'<field var="FORM_TYPE" type="hidden"><value>{form_type}</value></field>{body}</x>'
        f"{rsm}</query>"
    )


def rsm_request(**parts: str | None) -> str:
    inner = "".join(
        f"<{tag}/>" if value is None else f"<{tag}>{value}</{tag}>" for tag, value in parts.items()
    )
    return f'<set xmlns="{RSM}">{inner}</set>'


def table(reply: ET.Element) -> tuple[list[dict[str, list[str]]], ET.Element | None]:
    """The rows of a search result (var -> values) and its <set/>, if any."""
    assert reply.get("type") == "result", xml(reply)
    query = child(reply, "query", SEARCH)
    assert query is not None, xml(reply)
    x = child(query, "x", DATA)
    assert x is not None and x.get("type") == "result", xml(reply)
    assert child(x, "reported", DATA) is not None
    rows = [
        {f.get("var", ""): values(f) for f in item.findall(f"{{{DATA}}}field")}
        for item in x.findall(f"{{{DATA}}}item")
    ]
    return rows, child(query, "set", RSM)


def jids(rows: list[dict[str, list[str]]]) -> list[str]:
    return [row["jid"][0] for row in rows]


def aio_form(x: ET.Element) -> Any:
    """Parse a data form with aioxmpp (which refuses malformed forms)."""
    import aioxmpp.forms
    import aioxmpp.xml

    return aioxmpp.xml.read_single_xso(io.BytesIO(ET.tostring(x)), aioxmpp.forms.Data)


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 10) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s (last: {value!r})")
        await asyncio.sleep(0.1)


# -- XEP-0055: the form -----------------------------------------------------------


async def test_the_search_form(make_company: MakeCompany, clients: Any) -> None:
    category, city = f"t{RUN}-florist", f"T{RUN} Flowertown"
    await make_company(agents=0, name="Form Florist", category=category, city=city)
    customer = await clients(await register("customer"))

    info = await iq(customer, DOMAIN, f'<query xmlns="{DISCO_INFO}"/>')
    query = child(info, "query", DISCO_INFO)
    assert query is not None
    features = {el.get("var") for el in query if local(el.tag) == "feature"}
    assert {SEARCH, VCARD4} <= features

    reply = await iq(customer, DOMAIN, f'<query xmlns="{SEARCH}"/>')
    assert reply.get("type") == "result", xml(reply)
    query = child(reply, "query", SEARCH)
    assert query is not None
    assert "Find a company" in (text_of(query, "instructions") or "")
    x = child(query, "x", DATA)
    assert x is not None and x.get("type") == "form"
    fields = form_fields(x)
    assert list(fields) == ["FORM_TYPE", "name", "category", "city", "open-now"]
    assert values(fields["FORM_TYPE"]) == [SEARCH]
    assert [fields[v].get("type") for v in fields] == [
        "hidden",
        "text-single",
        "list-single",
        "list-single",
        "boolean",
    ]
    categories = [
        o.findtext(f"{{{DATA}}}value") for o in fields["category"].iter(f"{{{DATA}}}option")
    ]
    cities = [o.findtext(f"{{{DATA}}}value") for o in fields["city"].iter(f"{{{DATA}}}option")]
    assert categories[0] == "*" and category in categories
    assert cities[0] == "*" and city in cities
    assert values(fields["category"]) == ["*"]

    # An independent parser takes the form as it is.
    form = aio_form(x)
    assert form.get_form_type() == SEARCH
    assert {f.var for f in form.fields} == set(fields)


# -- XEP-0055: searching, XEP-0059 pages --------------------------------------------


async def test_search_by_category_city_name_and_open_now_with_pages(
    make_company: MakeCompany, clients: Any
) -> None:
    category, north, south = f"t{RUN}-tyres", f"T{RUN} North", f"T{RUN} South"
    made = []
    for n, (city, spec) in enumerate(
        [
            (north, "24/7"),
            (north, ALWAYS_CLOSED),
            (south, "24/7"),
            (north, None),
            (south, ALWAYS_CLOSED),
            (north, "24/7"),
            (south, "24/7"),
        ]
    ):
        opts: dict[str, str] = {"category": category, "city": city}
        if spec:
            opts["hours"] = spec
        # Names out of slug order: results are by name.
        made.append(await make_company(agents=0, name=f"Tyre Shop {7 - n} {RUN}", **opts))
    by_name = sorted(made, key=lambda c: c.name.casefold())
    everything = [c.jid for c in by_name]
    customer = await clients(await register("customer"))

    # The category in another case, three per page: 3 + 3 + 1, walking forward.
    walked: list[str] = []
    after = None
    while True:
        reply = await iq(
            customer,
            DOMAIN,
            submit(category=category.upper(), rsm=rsm_request(max="3", after=after)),
            "set",
        )
        rows, rsm = table(reply)
        assert rsm is not None and text_of(rsm, "count") == "7"
        if not rows:
            assert child(rsm, "first", RSM) is None
            break
        first = child(rsm, "first", RSM)
        assert first is not None and first.get("index") == str(len(walked))
        assert (first.text, text_of(rsm, "last")) == (jids(rows)[0], jids(rows)[-1])
        walked += jids(rows)
        after = text_of(rsm, "last")
    assert walked == everything

    # The last page, a page by index, the count alone.
    rows, rsm = table(
        await iq(
            customer,
            DOMAIN,
            submit(category=category, rsm=rsm_request(max="3", before=None)),
            "set",
        )
    )
    assert jids(rows) == everything[-3:]
    rows, _ = table(
        await iq(
            customer, DOMAIN, submit(category=category, rsm=rsm_request(max="2", index="5")), "set"
        )
    )
    assert jids(rows) == everything[5:7]
    rows, rsm = table(
        await iq(customer, DOMAIN, submit(category=category, rsm=rsm_request(max="0")), "set")
    )
    assert rows == [] and rsm is not None and text_of(rsm, "count") == "7"

    # Every row: address, name, category, city, open now.
    rows, rsm = table(await iq(customer, DOMAIN, submit(category=category), "set"))
    assert rsm is None  # everything fits in one page and no page was asked for
    expected_open = {made[i].jid for i in (0, 2, 3, 5, 6)}
    for row, company in zip(rows, by_name, strict=True):
        assert row["jid"] == [company.jid]
        assert row["name"] == [company.name]
        assert row["category"] == [category]
        assert row["open-now"] == ["true" if company.jid in expected_open else "false"]
    assert {row["city"][0] for row in rows} == {north, south}

    # The city, in lower case; a part of the name; open now; all together.
    rows, _ = table(await iq(customer, DOMAIN, submit(city=south.lower()), "set"))
    assert set(jids(rows)) == {made[i].jid for i in (2, 4, 6)}
    rows, _ = table(await iq(customer, DOMAIN, submit(name=f"shop 3 {RUN}".upper()), "set"))
    assert jids(rows) == [made[4].jid]
    rows, _ = table(await iq(customer, DOMAIN, submit(category=category, open_now="true"), "set"))
    assert set(jids(rows)) == expected_open
    assert {r["open-now"][0] for r in rows} == {"true"}
    rows, _ = table(
        await iq(customer, DOMAIN, submit(category=category, city=north, open_now="1"), "set")
    )
    assert set(jids(rows)) == {made[i].jid for i in (0, 3, 5)}

    # Nothing found: an empty table (aioxmpp accepts it, and every result).
    reply = await iq(customer, DOMAIN, submit(city=f"T{RUN} Nowhere"), "set")
    rows, _ = table(reply)
    assert rows == []
    query = child(reply, "query", SEARCH)
    assert query is not None
    form = aio_form(child(query, "x", DATA))  # type: ignore[arg-type]
    assert [f.var for f in form.reported.fields] == ["jid", "name", "category", "city", "open-now"]

    # A company removed from the directory disappears from the next search.
    assert (await orgchat("company", "remove", made[0].slug)).code == 0

    async def gone() -> bool:
        rows, _ = table(await iq(customer, DOMAIN, submit(category=category), "set"))
        return made[0].jid not in jids(rows)

    await eventually(gone, "removed company left out of the search")


async def test_a_large_result_is_limited_to_fifty(
    clients: Any, db: asyncpg.Connection, make_company: MakeCompany
) -> None:
    category = f"t{RUN}-bakery"
    slugs = [f"t{RUN}-bulk-{n:02d}" for n in range(55)]
    # Straight into PostgreSQL: the component learns it from its NOTIFY.
    await db.execute(
        "INSERT INTO companies (slug, name, category)"
        " SELECT s, 'Bulk ' || s, $2 FROM unnest($1::text[]) s",
        slugs,
        category,
    )
    customer = await clients(await register("customer"))
    try:

        async def all_there() -> Any:
            reply = await iq(customer, DOMAIN, submit(category=category), "set")
            rows, rsm = table(reply)
            return (rows, rsm) if rsm is not None and text_of(rsm, "count") == "55" else None

        rows, rsm = await eventually(all_there, "55 companies in the directory")
        assert len(rows) == 50
        assert text_of(rsm, "last") == f"{slugs[49]}@{DOMAIN}"
        rows, rsm = table(
            await iq(customer, DOMAIN, submit(category=category, rsm=rsm_request(max="500")), "set")
        )
        assert len(rows) == 50
    finally:
        await db.execute("DELETE FROM companies WHERE slug = ANY($1::text[])", slugs)


async def test_search_errors(make_company: MakeCompany, clients: Any) -> None:
    company = await make_company(agents=1, name="Error Shop")
    customer = await clients(await register("customer"))

    # Only the domain searches: a company (or a conversation) is no search service.
    for itype in ("get", "set"):
        reply = await iq(customer, company.jid, f'<query xmlns="{SEARCH}"/>', itype)
        condition, text = error_of(reply)
        assert condition == "service-unavailable", xml(reply)
        assert DOMAIN in (text or "")
    info = await iq(customer, company.jid, f'<query xmlns="{DISCO_INFO}"/>')
    query = child(info, "query", DISCO_INFO)
    assert query is not None
    assert SEARCH not in {el.get("var") for el in query if local(el.tag) == "feature"}

    agent = await clients(company.agents[0])
    customer.send_xml(f'<message to="{company.jid}" type="chat"><body>hi</body></message>')
    got = await agent.inbox.expect(is_message("hi"))
    conversation = (got.get("from") or "").split("/")[0]
    reply = await iq(agent, conversation, submit(), "set")
    assert error_of(reply)[0] == "service-unavailable", xml(reply)

    malformed = {
        "no form": f'<query xmlns="{SEARCH}"><nick>Pete</nick></query>',
        "not a boolean": submit(open_now="maybe"),
        "another FORM_TYPE": submit(form_type="urn:example:other"),
        "name too long": submit(name="x" * 101),
        "form type": f'<query xmlns="{SEARCH}"><x xmlns="{DATA}" type="form"/></query>',
        "bad max": submit(rsm=rsm_request(max="many")),
    }
    for case, payload in malformed.items():
        reply = await iq(customer, DOMAIN, payload, "set")
        condition, text = error_of(reply)
        assert condition == "bad-request", (case, xml(reply))
        assert text, case
        assert child(child(reply, "error"), "text", STANZAS) is not None  # type: ignore[arg-type]
    assert "Open now" in (
        error_of(await iq(customer, DOMAIN, submit(open_now="maybe"), "set"))[1] or ""
    )

    reply = await iq(
        customer, DOMAIN, submit(rsm=rsm_request(after=f"t{RUN}-nobody@{DOMAIN}")), "set"
    )
    assert error_of(reply)[0] == "item-not-found"
    nobody = f"t{RUN}-nobody-{new_id()}@{DOMAIN}"
    assert error_of(await iq(customer, nobody, f'<query xmlns="{SEARCH}"/>'))[0] == "item-not-found"


# -- XEP-0292 vCard4 and XEP-0054 vcard-temp -----------------------------------------


async def test_company_cards(make_company: MakeCompany, clients: Any) -> None:
    company = await make_company(
        agents=0,
        name="Card Shop",
        email="hello@card-shop.example",
        timezone="Asia/Novosibirsk",
        hours="Mo-Fr 09:00-18:00",
        category="stationery",
        city="Novosibirsk",
        phone="+7 383 555-01-00",
        url="https://card-shop.example/",
        address="Krasny prospekt 25",
    )
    bare = await make_company(agents=0, name="Bare Shop")
    customer = await clients(await register("customer"))

    info = await iq(customer, company.jid, f'<query xmlns="{DISCO_INFO}"/>')
    query = child(info, "query", DISCO_INFO)
    assert query is not None
    assert VCARD4 in {el.get("var") for el in query if local(el.tag) == "feature"}

    reply = await iq(customer, company.jid, f'<vcard xmlns="{VCARD4}"/>')
    assert reply.get("type") == "result", xml(reply)
    card = child(reply, "vcard", VCARD4)
    assert card is not None

    def prop(name: str, value: str = "text", el: ET.Element = card) -> list[str | None]:
        return [p.findtext(f"{{{VCARD4}}}{value}") for p in el.findall(f"{{{VCARD4}}}{name}")]

    assert prop("fn") == ["Card Shop"]
    assert prop("kind") == ["org"]
    assert prop("categories") == ["stationery"]
    assert prop("tel", "uri") == ["tel:+7-383-555-01-00"]
    assert prop("email") == ["hello@card-shop.example"]
    assert prop("url", "uri") == ["https://card-shop.example/"]
    assert prop("impp", "uri") == [f"xmpp:{company.jid}"]
    assert prop("tz") == ["Asia/Novosibirsk"]
    [note] = prop("note")
    assert note is not None and "Mo-Fr 09:00-18:00" in note and "Asia/Novosibirsk" in note
    [adr] = card.findall(f"{{{VCARD4}}}adr")
    parts = [local(el.tag) for el in adr if local(el.tag) != "parameters"]
    assert parts == ["pobox", "ext", "street", "locality", "region", "code", "country"]
    assert (adr.findtext(f"{{{VCARD4}}}street"), adr.findtext(f"{{{VCARD4}}}locality")) == (
        "Krasny prospekt 25",
        "Novosibirsk",
    )

    # The PEP-style read of XEP-0292 0.12, by slixmpp's own XEP-0292 plugin.
    from slixmpp import JID

    customer.register_plugin("xep_0292")
    result = await customer.plugin["xep_0292"].retrieve_vcard(JID(company.jid))
    item = result["pubsub"]["items"]["item"]
    assert item["id"] == "current"
    assert item["vcard"]["full_name"] == "Card Shop"
    pep_card = item.xml.find(f"{{{VCARD4}}}vcard")
    assert pep_card is not None and ET.canonicalize(xml(pep_card)) == ET.canonicalize(xml(card))
    missing = await iq(
        customer,
        company.jid,
        f'<pubsub xmlns="{PUBSUB}"><items node="urn:example:other"/></pubsub>',
    )
    assert error_of(missing)[0] == "item-not-found"

    # vcard-temp carries the same: street and city, phone, web site.
    reply = await iq(customer, company.jid, f'<vCard xmlns="{VCARD}"/>')
    old = child(reply, "vCard", VCARD)
    assert old is not None, xml(reply)
    adr_temp = child(old, "ADR", VCARD)
    assert adr_temp is not None
    assert (text_of(adr_temp, "STREET"), text_of(adr_temp, "LOCALITY")) == (
        "Krasny prospekt 25",
        "Novosibirsk",
    )
    tel = child(old, "TEL", VCARD)
    assert tel is not None and text_of(tel, "NUMBER") == "+7 383 555-01-00"
    assert text_of(old, "URL") == "https://card-shop.example/"

    # What is not known is left out.
    reply = await iq(customer, bare.jid, f'<vcard xmlns="{VCARD4}"/>')
    bare_card = child(reply, "vcard", VCARD4)
    assert bare_card is not None
    present = {local(el.tag) for el in bare_card}
    assert present == {"fn", "kind", "impp", "tz", "note"}
    old = child(await iq(customer, bare.jid, f'<vCard xmlns="{VCARD}"/>'), "vCard", VCARD)
    assert old is not None
    assert not {"ADR", "TEL", "URL"} & {local(el.tag) for el in old}

    # The service's own card; no card to write, nor of conversation addresses.
    service = child(await iq(customer, DOMAIN, f'<vcard xmlns="{VCARD4}"/>'), "vcard", VCARD4)
    assert service is not None and prop("kind", el=service) == ["application"]
    reply = await iq(
        customer, company.jid, f'<vcard xmlns="{VCARD4}"><fn><text>X</text></fn></vcard>', "set"
    )
    assert error_of(reply)[0] == "feature-not-implemented"


# -- XEP-0128 extended information ----------------------------------------------------


def company_info(reply: ET.Element) -> dict[str, list[str]]:
    query = child(reply, "query", DISCO_INFO)
    assert query is not None, xml(reply)
    forms = [x for x in query if x.tag == f"{{{DATA}}}x"]
    [form] = [x for x in forms if values(form_fields(x)["FORM_TYPE"]) == [COMPANY_INFO]]
    assert form.get("type") == "result"
    return {var: values(field) for var, field in form_fields(form).items()}


async def test_extended_disco_info(make_company: MakeCompany, clients: Any) -> None:
    spec, timezone = "Mo-Su 00:00-00:01", "UTC"
    company = await make_company(
        agents=0,
        name="Info Shop",
        category="books",
        city="Omsk",
        hours=spec,
        timezone=timezone,
    )
    plain = await make_company(agents=0, name="Plain Info Shop")
    customer = await clients(await register("customer"))

    now = dt.datetime.now(dt.UTC)
    info = company_info(await iq(customer, company.jid, f'<query xmlns="{DISCO_INFO}"/>'))
    is_open, opens = hours.open_now(spec, timezone, now)
    assert info["FORM_TYPE"] == [COMPANY_INFO]
    assert (info["category"], info["city"], info["timezone"], info["hours"]) == (
        ["books"],
        ["Omsk"],
        [timezone],
        [spec],
    )
    assert info["open-now"] == ["true" if is_open else "false"]
    if not is_open:
        assert opens is not None
        assert info["next-opening"] == [opens.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")]
    assert "first-response" not in info  # nobody ever asked

    # Unknown hours count as open; absent fields are left out.
    plain_info = company_info(await iq(customer, plain.jid, f'<query xmlns="{DISCO_INFO}"/>'))
    assert plain_info == {"FORM_TYPE": [COMPANY_INFO], "timezone": ["UTC"], "open-now": ["true"]}

    # aioxmpp's disco client reads the same extension.
    import aioxmpp
    import aioxmpp.disco

    other = await clients(await register("other"), lib="aioxmpp")
    disco = other.client.summon(aioxmpp.disco.DiscoClient)
    result = await disco.query_info(aioxmpp.JID.fromstr(company.jid))
    [ext] = [form for form in result.exts if form.get_form_type() == COMPANY_INFO]
    assert {f.var: list(f.values) for f in ext.fields}["city"] == ["Omsk"]
    assert "urn:ietf:params:xml:ns:vcard-4.0" in result.features


async def test_a_company_answers_at_the_resource_of_its_presence(
    make_company: MakeCompany, clients: Any
) -> None:
    """A company's presence comes from ``slug@domain/orgchat``; clients that
    address what follows to that full JID (mcabber does) reach the company."""
    company = await make_company(agents=1, name="Resource Shop", city="Tomsk")
    agent = await clients(company.agents[0])
    customer = await clients(await register("customer"))
    full = f"{company.jid}/orgchat"
    info = await iq(customer, full, f'<query xmlns="{DISCO_INFO}"/>')
    assert info.get("type") == "result", xml(info)
    assert company_info(info)["city"] == ["Tomsk"]
    card = await iq(customer, full, f'<vCard xmlns="{VCARD}"/>')
    assert card.get("type") == "result" and "Resource Shop" in xml(card)
    customer.send_xml(chat(full, "to the resource", new_id()))
    got = await agent.inbox.expect(is_message("to the resource"))
    assert got.get("from", "").startswith(company.slug + "+")


async def test_first_response_time_in_disco_info(make_company: MakeCompany, clients: Any) -> None:
    company = await make_company(agents=1, name="Fast Shop")
    agent = await clients(company.agents[0])
    customer = await clients(await register("customer"))

    customer.send_xml(
        f'<message to="{company.jid}" type="chat"><body>Open on Sunday?</body></message>'
    )
    got = await agent.inbox.expect(is_message("Open on Sunday?"))
    await asyncio.sleep(1.2)
    conversation = (got.get("from") or "").split("/")[0]
    agent.send_xml(
        f'<message to="{conversation}" type="chat"><body>Yes, 10 to 16.</body></message>'
    )
    await customer.inbox.expect(is_message("Yes, 10 to 16."))

    async def measured() -> list[str] | None:
        info = company_info(await iq(customer, company.jid, f'<query xmlns="{DISCO_INFO}"/>'))
        return info.get("first-response")

    [seconds] = await eventually(measured, "first-response time in disco#info")
    assert 1 <= int(seconds) <= 30, seconds
