"""Requests to several companies (urn:orgchat:request:0) with real clients through ejabberd.

The customer is a custom client sending the raw XML of docs/protocol.md;
agents are plain XMPP clients. Every test checks what the clients receive
and what PostgreSQL holds.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from xml.etree import ElementTree as ET

import asyncpg
import pytest

from tests.integration.clients import chat, child, is_message, local, new_id
from tests.integration.conftest import DOMAIN, RUN, MakeCompany, register
from tests.integration.test_mam import CLIENT, FORWARD, MAM, form, forwarded, mam

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

NS = "urn:orgchat:request:0"
RSM = "http://jabber.org/protocol/rsm"
DAYS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")

FIELDS = (
    '<x xmlns="jabber:x:data" type="submit">'
    '<field var="FORM_TYPE" type="hidden"><value>urn:orgchat:request:0#fields</value></field>'
    '<field var="tyre-size" label="Tyre size"><value>205/55 R16</value></field>'
    '<field var="quantity" label="Quantity"><value>4</value></field>'
    "</x>"
)
OFFER = (
    '<offer xmlns="urn:orgchat:request:0"><x xmlns="jabber:x:data" type="submit">'
    '<field var="FORM_TYPE" type="hidden"><value>urn:orgchat:request:0#offer</value></field>'
    '<field var="price"><value>320.00</value></field>'
    '<field var="currency"><value>EUR</value></field>'
    '<field var="availability"><value>in-stock</value></field>'
    '<field var="valid-until"><value>2030-12-05</value></field>'
    "</x></offer>"
)


async def iq(client: Any, payload: str, itype: str = "set", to: str = DOMAIN) -> ET.Element:
    """Send an IQ and return its answer (result or error)."""
    iq_id = new_id()
    client.send_xml(f'<iq type="{itype}" to="{to}" id="{iq_id}">{payload}</iq>')
    return await client.inbox.expect(lambda el: local(el.tag) == "iq" and el.get("id") == iq_id)


def create(
    *jids: str, subject: str = "Winter tyres", body: str = "Price for four?", extra: str = ""
) -> str:
    companies = "".join(f'<company jid="{j}"/>' for j in jids)
    return (
        f'<create xmlns="{NS}"><subject>{subject}</subject><body>{body}</body>'
        f"{companies}{extra}</create>"
    )


def request_of(answer: ET.Element) -> ET.Element:
    assert answer.get("type") == "result", ET.tostring(answer, encoding="unicode")
    found = child(answer, "request", NS)
    assert found is not None
    return found


def targets(request: ET.Element) -> dict[str, tuple[str | None, str | None]]:
    """{jid: (status, reason)}"""
    return {
        t.get("jid", ""): (t.get("status"), t.get("reason"))
        for t in request.findall(f"{{{NS}}}target")
    }


def condition(answer: ET.Element) -> str | None:
    assert answer.get("type") == "error", ET.tostring(answer, encoding="unicode")
    err = child(answer, "error")
    assert err is not None
    names = [local(c.tag) for c in err if local(c.tag) != "text"]
    return names[0] if names else None


async def statuses(client: Any, request_id: str, *expected: tuple[str, str]) -> None:
    """Wait for status notifications (body-less headlines) announcing every (jid, status).

    One notification may carry several companies' changes.
    """

    def pred(el: ET.Element) -> bool:
        st = child(el, "status", NS)
        return (
            local(el.tag) == "message"
            and el.get("type") == "headline"
            and child(el, "body") is None
            and st is not None
            and st.get("request") == request_id
        )

    seen: set[tuple[str, str]] = set()
    while not set(expected) <= seen:
        el = await client.inbox.expect(pred)
        st = child(el, "status", NS)
        assert st is not None
        seen |= {(t.get("jid", ""), t.get("status", "")) for t in st.findall(f"{{{NS}}}target")}


def has_thread(request_id: str, body: str | None = None) -> Any:
    base = is_message(body)

    def pred(el: ET.Element) -> bool:
        thread = child(el, "thread")
        return base(el) and thread is not None and thread.text == request_id

    return pred


def conversation_of(msg: ET.Element) -> str:
    return msg.get("from", "").split("/")[0]


def archived(result: ET.Element) -> ET.Element:
    """The archived message inside a XEP-0313 result."""
    res = child(result, "result", MAM)
    fwd = child(res, "forwarded", FORWARD) if res is not None else None
    msg = child(fwd, "message", CLIENT) if fwd is not None else None
    assert msg is not None, ET.tostring(result, encoding="unicode")
    return msg


def day_after_tomorrow() -> str:
    return DAYS[(dt.datetime.now(dt.UTC).weekday() + 2) % 7]


async def test_fan_out_answers_statuses_and_close(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection
) -> None:
    north = await make_company(agents=1, name="Tyres North")
    south = await make_company(agents=1, name="Tyres South")
    east = await make_company(agents=1, name="Tyres East")  # its agent is offline
    agent_n = await clients(north.agents[0])
    agent_s = await clients(south.agents[0], lib="aioxmpp")
    account = await register("asker")
    customer = await clients(account)

    answer = await iq(customer, create(north.jid, south.jid, east.jid, extra=FIELDS))
    request = request_of(answer)
    rid = request.get("id", "")
    assert request.get("state") == "open"
    assert targets(request) == {
        north.jid: ("sent", None),
        south.jid: ("sent", None),
        east.jid: ("sent", None),
    }

    # Each company gets it in its own conversation, marked as the request, readable as text.
    got_n = await agent_n.inbox.expect(has_thread(rid))
    got_s = await agent_s.inbox.expect(is_message())
    body_n = child(got_n, "body")
    assert body_n is not None and body_n.text is not None
    assert "Winter tyres" in body_n.text and "Tyre size: 205/55 R16" in body_n.text
    payload = child(got_n, "request", NS)
    assert payload is not None and payload.get("id") == rid
    assert payload.find("{jabber:x:data}x") is not None
    text_s = ET.tostring(got_s, encoding="unicode")
    assert "Winter tyres" in text_s
    for other in (north, east):  # nobody learns who else was asked
        assert other.slug not in text_s and other.name not in text_s
    assert account.user not in ET.tostring(got_n, encoding="unicode")
    conv_n, conv_s = conversation_of(got_n), conversation_of(got_s)

    # Delivered to the agents online; the customer is told.
    await statuses(customer, rid, (north.jid, "delivered"), (south.jid, "delivered"))

    # Seen (XEP-0333), then an offer from north, a decline from south.
    agent_n.send_xml(
        chat(
            conv_n,
            None,
            extra=f'<displayed xmlns="urn:xmpp:chat-markers:0" id="{got_n.get("id")}"/>',
        )
    )
    await statuses(customer, rid, (north.jid, "seen"))
    agent_n.send_xml(chat(conv_n, "Four for 320 EUR fitted.", extra=OFFER))
    # The offer's terms are in the body too: what every client shows.
    offer_body = "Four for 320 EUR fitted.\n\nOffer: 320.00 EUR, in stock, valid until 2030-12-05"
    offer_msg = await customer.inbox.expect(has_thread(rid, offer_body))
    assert offer_msg.get("from", "").split("/")[0] == north.jid
    offer_el = child(offer_msg, "offer", NS)
    assert offer_el is not None and offer_el.get("request") == rid
    await statuses(customer, rid, (north.jid, "answered"))

    agent_s.send_xml(chat(conv_s, "Sorry, none left."))
    reply_s = await customer.inbox.expect(has_thread(rid, "Sorry, none left."))
    ref = child(reply_s, "reply", NS)
    assert ref is not None and ref.get("request") == rid
    await statuses(customer, rid, (south.jid, "answered"))

    # The offline company gets it, with its original time, when an agent comes online.
    agent_e = await clients(east.agents[0])
    got_e = await agent_e.inbox.expect(has_thread(rid))
    assert child(got_e, "delay", "urn:xmpp:delay") is not None
    await statuses(customer, rid, (east.jid, "delivered"))

    full = request_of(await iq(customer, f'<request xmlns="{NS}" id="{rid}"/>', "get"))
    assert targets(full) == {
        north.jid: ("answered", None),
        south.jid: ("answered", None),
        east.jid: ("delivered", None),
    }
    north_t = next(t for t in full.findall(f"{{{NS}}}target") if t.get("jid") == north.jid)
    stored_offer = child(north_t, "offer", NS)
    assert stored_offer is not None and "320.00" in ET.tostring(stored_offer, encoding="unicode")
    rows = await db.fetch(
        "SELECT c.slug, t.status FROM request_targets t JOIN requests r ON r.id = t.request_id"
        " JOIN companies c ON c.id = t.company_id WHERE r.public_id = $1 ORDER BY t.position",
        rid,
    )
    assert [(r["slug"], r["status"]) for r in rows] == [
        (north.slug, "answered"),
        (south.slug, "answered"),
        (east.slug, "delivered"),
    ]
    in_archive = await db.fetchval(
        "SELECT count(*) FROM messages WHERE thread = $1 AND payload IS NOT NULL", rid
    )
    assert in_archive == 5  # three fan-outs, the offer and the reply

    # History (XEP-0313) serves the request's messages with their payloads.
    results, _ = await mam(customer, north.jid)
    history = [archived(r) for r in results]
    assert [child(m, "thread", CLIENT).text for m in history] == [rid, rid]  # type: ignore[union-attr]
    assert child(history[0], "request", NS) is not None  # the fan-out, as Anna sent it
    assert child(history[1], "offer", NS) is not None

    # Close, accepting north's offer: north and the others are told, politely.
    closed = request_of(
        await iq(customer, f'<close xmlns="{NS}" request="{rid}" accept="{north.jid}"/>')
    )
    assert closed.get("state") == "closed" and closed.get("accepted") == north.jid
    notice_n = await agent_n.inbox.expect(has_thread(rid))
    closed_el = child(notice_n, "closed", NS)
    assert closed_el is not None and closed_el.get("accepted") == "true"
    notice_e = await agent_e.inbox.expect(lambda el: child(el, "closed", NS) is not None)
    assert child(notice_e, "closed", NS).get("accepted") == "false"  # type: ignore[union-attr]
    again = await iq(customer, f'<close xmlns="{NS}" request="{rid}"/>')
    assert condition(again) == "not-allowed"

    # A closed request collects no more replies: later messages are plain chat.
    agent_n.send_xml(chat(conv_n, "Thanks for choosing us!"))
    after = await customer.inbox.expect(is_message("Thanks for choosing us!"))
    assert child(after, "thread") is None and child(after, "reply", NS) is None


async def test_refusals_are_reported_per_company(make_company: MakeCompany, clients: Any) -> None:
    open_co = await make_company(agents=1, name="Open Shop")
    closed_co = await make_company(
        agents=1, name="Closed Shop", hours=f"{day_after_tomorrow()} 09:00-18:00"
    )
    opted_out = await make_company(agents=1, name="No Requests Shop", no_requests=True)
    customer = await clients(await register("refused"))
    closed_agent = await clients(closed_co.agents[0])
    missing = f"t{RUN}-nobody@{DOMAIN}"

    request = request_of(
        await iq(customer, create(open_co.jid, closed_co.jid, missing, opted_out.jid))
    )
    found = targets(request)
    assert found[open_co.jid] == ("sent", None)
    assert found[closed_co.jid] == ("refused", "closed")
    assert found[missing] == ("refused", "unknown")
    assert found[opted_out.jid] == ("refused", "opted-out")
    closed_t = next(t for t in request.findall(f"{{{NS}}}target") if t.get("jid") == closed_co.jid)
    assert closed_t.get("opens", "").startswith(
        (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).strftime("%Y-%m-%dT09:00")
    )
    await closed_agent.inbox.absent(is_message())

    # include-closed: the closed company gets it too, to answer when it opens.
    request = request_of(
        await iq(
            customer,
            create(closed_co.jid, body="Also when closed?").replace(
                "<create ", '<create include-closed="true" '
            ),
        )
    )
    assert targets(request) == {closed_co.jid: ("sent", None)}
    await closed_agent.inbox.expect(is_message())

    # Nobody can take it: an error that says why, and nothing stored.
    answer = await iq(customer, create(missing))
    assert condition(answer) == "item-not-found"


async def test_limits_duplicates_and_bad_input(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection
) -> None:
    shop = await make_company(agents=1, name="Limit Shop")
    agent = await clients(shop.agents[0])
    account = await register("limits")
    customer = await clients(account)

    # Malformed payloads: bad-request, and nothing reaches the company.
    for bad in (
        f'<create xmlns="{NS}"><subject>No body</subject><company jid="{shop.jid}"/></create>',
        f'<create xmlns="{NS}"><subject>s</subject><body>b</body></create>',
        create(shop.jid, extra='<search category="tyres"/>'),
        create(f"{shop.jid}/resource"),
        create(shop.jid, extra="<unexpected/>"),
        create(shop.jid, subject=" "),
    ):
        assert condition(await iq(customer, bad)) == "bad-request", bad
    assert condition(await iq(customer, create(shop.jid), itype="get")) == "bad-request"
    await agent.inbox.absent(is_message())

    # Too many companies: policy-violation.
    many = [f"t{RUN}-x{n}@{DOMAIN}" for n in range(11)]
    assert condition(await iq(customer, create(*many))) == "policy-violation"

    # The same text to the same companies: the earlier request, sent once.
    first = request_of(await iq(customer, create(shop.jid, body="Same question")))
    again = request_of(await iq(customer, create(shop.jid, body="Same question")))
    assert again.get("id") == first.get("id") and again.get("duplicate") == "true"
    await agent.inbox.expect(is_message())
    await agent.inbox.absent(is_message())
    assert (
        await db.fetchval("SELECT count(*) FROM requests WHERE customer_jid = $1", account.jid) == 1
    )

    # The per-customer rate (5 per hour by default; the duplicate counted too).
    for n in range(3):
        request_of(await iq(customer, create(shop.jid, body=f"Question {n}")))
    answer = await iq(customer, create(shop.jid, body="One too many"))
    assert condition(answer) == "resource-constraint"
    err = child(answer, "error")
    assert err is not None and err.get("type") == "wait"

    # Unknown or foreign requests do not exist.
    rid = first.get("id", "")
    other = await clients(await register("other"))
    for who, payload in (
        (customer, f'<request xmlns="{NS}" id="rnosuchrequestxxxxxxx"/>'),
        (other, f'<request xmlns="{NS}" id="{rid}"/>'),
    ):
        assert condition(await iq(who, payload, "get")) == "item-not-found"
    assert condition(await iq(other, f'<close xmlns="{NS}" request="{rid}"/>')) == "item-not-found"
    assert condition(await iq(customer, f'<request xmlns="{NS}" id="not an id"/>', "get")) == (
        "bad-request"
    )


async def test_search_list_decline_and_expiry(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection
) -> None:
    category = f"tyres-{RUN}"
    shops = [
        await make_company(agents=1, name=f"Search Shop {n}", category=category, city="Tomsk")
        for n in range(3)
    ]
    elsewhere = await make_company(agents=1, name="Far Shop", category=category, city="Omsk")
    customer = await clients(await register("searcher"))
    agents = [await clients(s.agents[0]) for s in shops]
    far_agent = await clients(elsewhere.agents[0])

    search = f'<search category="{category.upper()}" city="tomsk" max="2"/>'
    request = request_of(
        await iq(
            customer,
            f'<create xmlns="{NS}"><subject>Studded?</subject>'
            f"<body>Do you have studded ones?</body>{search}</create>",
        )
    )
    rid = request.get("id", "")
    chosen = [s for s in shops if s.jid in targets(request)]
    assert len(chosen) == 2 and all(v == ("sent", None) for v in targets(request).values())
    await far_agent.inbox.absent(is_message())
    nothing = (
        f'<create xmlns="{NS}"><subject>s</subject><body>b</body>'
        f'<search city="Atlantis-{RUN}"/></create>'
    )
    assert condition(await iq(customer, nothing)) == "item-not-found"

    # A decline from custom desk software: the body is written for standard clients.
    first = chosen[0]
    agent = agents[shops.index(first)]
    got = await agent.inbox.expect(has_thread(rid))
    agent.send_xml(
        chat(
            conversation_of(got),
            None,
            extra=f'<decline xmlns="{NS}"><reason>Out of stock</reason></decline>',
        )
    )
    declined = await customer.inbox.expect(has_thread(rid))
    body = child(declined, "body")
    assert body is not None and body.text == "Declined: Out of stock"
    await statuses(customer, rid, (first.jid, "declined"))
    bad_offer = OFFER.replace("EUR", "euro")
    agent.send_xml(chat(conversation_of(got), "Bad offer", "bad1", extra=bad_offer))
    refused = await agent.inbox.expect(lambda el: el.get("id") == "bad1")
    assert refused.get("type") == "error" and condition(refused) == "bad-request"

    # The list, newest first, paged (XEP-0059).
    second = request_of(await iq(customer, create(elsewhere.jid, body="Second request")))
    page = await iq(
        customer,
        f'<requests xmlns="{NS}"><set xmlns="{RSM}"><max>1</max></set></requests>',
        "get",
    )
    assert page.get("type") == "result"
    listing = child(page, "requests", NS)
    assert listing is not None
    assert [r.get("id") for r in listing.findall(f"{{{NS}}}request")] == [second.get("id")]
    rsm = child(listing, "set", RSM)
    assert rsm is not None and child(rsm, "count").text == "2"  # type: ignore[union-attr]
    last = child(rsm, "last")
    assert last is not None
    page2 = await iq(
        customer,
        f'<requests xmlns="{NS}"><set xmlns="{RSM}"><max>5</max><after>{last.text}</after></set>'
        "</requests>",
        "get",
    )
    listing2 = child(page2, "requests", NS)
    assert listing2 is not None
    assert [r.get("id") for r in listing2.findall(f"{{{NS}}}request")] == [rid]

    # Expiry: time passes (the row says so); the sweep expires it once and tells the customer.
    await db.execute(
        "UPDATE requests SET expires_at = now() - interval '1 second' WHERE public_id = $1", rid
    )
    other = chosen[1]
    await statuses(customer, rid, (other.jid, "expired"))
    full = request_of(await iq(customer, f'<request xmlns="{NS}" id="{rid}"/>', "get"))
    assert full.get("state") == "expired"
    assert targets(full) == {first.jid: ("declined", None), other.jid: ("expired", None)}
    assert condition(await iq(customer, f'<close xmlns="{NS}" request="{rid}"/>')) == "not-allowed"


async def test_the_list_in_full_and_the_limit_in_service_discovery(
    make_company: MakeCompany, clients: Any
) -> None:
    """What the web page asks on (re)connection: the limit, then every request with
    its companies' statuses, offers and declines, in one round trip."""
    customer = await clients(await register("lister"))
    disco = await iq(customer, '<query xmlns="http://jabber.org/protocol/disco#info"/>', "get")
    query = child(disco, "query", "http://jabber.org/protocol/disco#info")
    assert query is not None
    assert NS in {f.get("var") for f in query.findall("{*}feature")}
    limits = [
        x
        for x in query.findall("{jabber:x:data}x")
        if any(v.text == NS for v in x.iterfind("{*}field[@var='FORM_TYPE']/{*}value"))
    ]
    assert len(limits) == 1
    most = limits[0].find("{*}field[@var='max-companies']/{*}value")
    assert most is not None and most.text == "10"

    north = await make_company(agents=1, name="Full North")
    south = await make_company(agents=1, name="Full South")
    agent_n, agent_s = await clients(north.agents[0]), await clients(south.agents[0])
    rid = request_of(await iq(customer, create(north.jid, south.jid, extra=FIELDS))).get("id")
    assert rid
    got_n = await agent_n.inbox.expect(has_thread(rid))
    got_s = await agent_s.inbox.expect(has_thread(rid))
    agent_n.send_xml(chat(conversation_of(got_n), "320 EUR.", extra=OFFER))
    agent_s.send_xml(
        chat(
            conversation_of(got_s),
            None,
            extra=f'<decline xmlns="{NS}"><reason>Out of stock</reason></decline>',
        )
    )
    await statuses(customer, rid, (north.jid, "answered"), (south.jid, "declined"))

    def listing(full: str) -> str:
        return f'<requests xmlns="{NS}"{full}><set xmlns="{RSM}"><max>5</max></set></requests>'

    answer = await iq(customer, listing(' full="true"'), "get")
    listed = child(answer, "requests", NS)
    assert listed is not None
    (request,) = listed.findall(f"{{{NS}}}request")
    assert request.get("id") == rid
    assert request.findtext(f"{{{NS}}}body") == "Price for four?"
    assert request.find("{jabber:x:data}x") is not None  # the customer's fields
    by_jid = {t.get("jid"): t for t in request.findall(f"{{{NS}}}target")}
    assert by_jid[north.jid].get("status") == "answered" and by_jid[north.jid].get("updated")
    price = by_jid[north.jid].find(f"{{{NS}}}offer/{{jabber:x:data}}x/*[@var='price']/*")
    assert price is not None and price.text == "320.00"
    assert by_jid[south.jid].get("status") == "declined"
    assert by_jid[south.jid].findtext(f"{{{NS}}}reason") == "Out of stock"

    # Without full="true", the summary it always was: no body, offers or reasons.
    summary = child(await iq(customer, listing(""), "get"), "requests", NS)
    assert summary is not None
    (brief,) = summary.findall(f"{{{NS}}}request")
    assert brief.find(f"{{{NS}}}body") is None
    assert not [t for t in brief.findall(f"{{{NS}}}target") if len(t)]
    assert condition(await iq(customer, listing(' full="yes"'), "get")) == "bad-request"


# -- standard clients: the same flow through XEP-0050 ad-hoc commands (aioxmpp) ----------


async def run_command(client: Any, to: str, node: str, *stages: dict[str, list[str]]) -> Any:
    """Execute a command with aioxmpp's XEP-0050 client, filling one form per stage.

    Returns the finished session (its status, notes and result payload).
    """
    import aioxmpp
    import aioxmpp.adhoc
    import aioxmpp.forms

    adhoc = client.client.summon(aioxmpp.adhoc.AdHocClient)
    session = await adhoc.execute(aioxmpp.JID.fromstr(to), node)
    for values in stages:
        form = session.first_payload
        assert isinstance(form, aioxmpp.forms.Data), form
        form.type_ = aioxmpp.forms.DataType.SUBMIT
        known = {f.var for f in form.fields}
        assert set(values) <= known, (set(values) - known, node)
        for fld in form.fields:
            if fld.var in values:
                fld.values[:] = values[fld.var]
        actions = session.allowed_actions
        action = (
            aioxmpp.adhoc.ActionType.NEXT
            if aioxmpp.adhoc.ActionType.NEXT in actions
            else aioxmpp.adhoc.ActionType.COMPLETE
        )
        await session.proceed(action=action, payload=form)
    return session


def notes(session: Any) -> str:
    return " ".join(n.body or "" for n in session.response.notes)


def table(session: Any) -> list[dict[str, str]]:
    """The rows of a result form's table (XEP-0004 <reported/> + <item/>)."""
    form = session.first_payload
    return [{f.var: " ".join(f.values) for f in item.fields} for item in form.items]


async def test_the_whole_flow_from_standard_clients(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection
) -> None:
    import aioxmpp
    import aioxmpp.adhoc

    bakery = await make_company(agents=1, name="Bakery One")
    other = await make_company(agents=1, name="Bakery Two")
    account = await register("standard")
    customer = await clients(account, lib="aioxmpp")
    agent_1 = await clients(bakery.agents[0], lib="aioxmpp")
    agent_2 = await clients(other.agents[0], lib="aioxmpp")

    adhoc = customer.client.summon(aioxmpp.adhoc.AdHocClient)
    listed = {
        item.node: item.name for item in await adhoc.get_commands(aioxmpp.JID.fromstr(DOMAIN))
    }
    assert listed["ask"] == "Ask several companies" and "requests" in listed
    assert "close-request" in listed

    asked = await run_command(
        customer,
        DOMAIN,
        "ask",
        {
            "companies": [bakery.jid, other.jid],
            "subject": ["Birthday cake"],
            "body": ["A cake for 12 people on Saturday?", "Chocolate, please."],
        },
    )
    assert asked.status == aioxmpp.adhoc.CommandStatus.COMPLETED
    assert "Sent to 2 companies" in notes(asked)
    assert {r["status"] for r in table(asked)} == {"sent"}
    rid = await db.fetchval("SELECT public_id FROM requests WHERE customer_jid = $1", account.jid)

    got_1 = await agent_1.inbox.expect(is_message())
    text_1 = child(got_1, "body")
    assert text_1 is not None and "Chocolate, please." in (text_1.text or "")
    conv_1 = conversation_of(got_1)
    got_2 = await agent_2.inbox.expect(is_message())
    conv_2 = conversation_of(got_2)

    # The agents answer with their commands: an offer, a decline.
    offered = await run_command(
        agent_1,
        conv_1,
        "offer",
        {"price": ["45"], "currency": ["EUR"], "availability": ["to-order"], "message": []},
    )
    assert offered.status == aioxmpp.adhoc.CommandStatus.COMPLETED, notes(offered)
    offer_msg = await customer.inbox.expect(is_message("Offer: 45.00 EUR, to order"))
    assert offer_msg.get("from", "").split("/")[0] == bakery.jid
    # The agent sees in the conversation's chat what the command sent for him.
    echo = f"{bakery.agents[0].user}: Offer: 45.00 EUR, to order"
    await agent_1.inbox.expect(is_message(echo, frm=conv_1))
    declined = await run_command(agent_2, conv_2, "decline", {"reason": ["Fully booked"]})
    assert declined.status == aioxmpp.adhoc.CommandStatus.COMPLETED
    await customer.inbox.expect(is_message("Declined: Fully booked"))
    echo = f"{other.agents[0].user}: Declined: Fully booked"
    await agent_2.inbox.expect(is_message(echo, frm=conv_2))

    # Only the company's agents may answer in a conversation.
    with pytest.raises(aioxmpp.errors.XMPPCancelError) as refused:
        await run_command(agent_2, conv_1, "offer")
    assert refused.value.condition == aioxmpp.ErrorCondition.FORBIDDEN

    mine = await run_command(customer, DOMAIN, "requests")
    assert {(r["company"], r["status"]) for r in table(mine)} == {
        ("Bakery One", "answered"),
        ("Bakery Two", "declined"),
    }

    closed = await run_command(
        customer, DOMAIN, "close-request", {"request": [rid]}, {"accept": [bakery.jid]}
    )
    assert closed.status == aioxmpp.adhoc.CommandStatus.COMPLETED
    notice = await agent_1.inbox.expect(is_message())
    told = "/me closed this request and accepted your offer."
    assert child(notice, "body").text == told  # type: ignore[union-attr]
    # History on a new device has it too: the agent's own archive with the conversation.
    device = await clients(bakery.agents[0], announce=False, resource="new-device")
    results, _answer = await mam(device, bakery.agents[0].jid, form=form(**{"with": conv_1}))
    assert forwarded(results[-1])[3] == told
    assert await db.fetchval("SELECT state FROM requests WHERE public_id = $1", rid) == "closed"
    await agent_2.inbox.absent(is_message())  # it declined: not bothered again
