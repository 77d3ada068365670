"""Protocol features with real clients: receipts, markers, chat states, stanza ids,
nicknames, privacy, limits, service discovery, errors, presence, pending delivery
and agents with several devices.

Every test drives the real stack (ejabberd, the session's `orgchat run`,
PostgreSQL, Redis) through real client connections and checks what each
client receives and what PostgreSQL and Redis hold.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from xml.etree import ElementTree as ET

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.integration.clients import (
    Predicate,
    chat,
    child,
    error_type,
    is_error,
    is_message,
    local,
    new_id,
    text_of,
)
from tests.integration.conftest import (
    DOMAIN,
    REDIS_PREFIX,
    RUN,
    ComponentProcess,
    MakeCompany,
    orgchat,
    presence_shows,
    register,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

RECEIPTS = "urn:xmpp:receipts"
MARKERS = "urn:xmpp:chat-markers:0"
CHATSTATES = "http://jabber.org/protocol/chatstates"
SID = "urn:xmpp:sid:0"
NICK = "http://jabber.org/protocol/nick"
DELAY = "urn:xmpp:delay"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
RSM = "http://jabber.org/protocol/rsm"
VCARD = "vcard-temp"
PING = "urn:xmpp:ping"
REQUEST = f'<request xmlns="{RECEIPTS}"/>'


# -- helpers ----------------------------------------------------------------------


def bare(jid: str | None) -> str:
    return (jid or "").split("/")[0]


def receipt_for(mid: str, frm: str | None = None) -> Predicate:
    def pred(el: ET.Element) -> bool:
        got = child(el, "received", RECEIPTS)
        if local(el.tag) != "message" or got is None or got.get("id") != mid:
            return False
        return frm is None or bare(el.get("from")) == frm

    return pred


def has_child(name: str, ns: str) -> Predicate:
    def pred(el: ET.Element) -> bool:
        return (
            local(el.tag) == "message"
            and el.get("type") != "error"
            and child(el, name, ns) is not None
        )

    return pred


def marker_for(name: str, mid: str) -> Predicate:
    def pred(el: ET.Element) -> bool:
        got = child(el, name, MARKERS)
        return local(el.tag) == "message" and got is not None and got.get("id") == mid

    return pred


def xml(el: ET.Element) -> str:
    return ET.tostring(el, encoding="unicode")


async def iq(client: Any, to: str, payload: str, itype: str = "get") -> ET.Element:
    """Send an IQ and return its answer (result or error)."""
    iid = new_id()
    client.send_xml(f'<iq type="{itype}" to="{to}" id="{iid}">{payload}</iq>')
    return await client.inbox.expect(
        lambda el: local(el.tag) == "iq" and el.get("id") == iid and el.get("type") != "get"
    )


def condition(reply: ET.Element) -> str | None:
    """The defined condition of an error reply; None for anything else."""
    if reply.get("type") != "error":
        return None
    err = child(reply, "error")
    assert err is not None, xml(reply)
    conds = [c for c in err if c.tag.startswith("{urn:ietf:params:xml:ns:xmpp-stanzas}")]
    conds = [c for c in conds if local(c.tag) != "text"]
    assert len(conds) == 1, xml(reply)
    return local(conds[0].tag)


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 10) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s (last: {value!r})")
        await asyncio.sleep(0.05)


def record(client: Any) -> list[ET.Element]:
    """Keep a copy of every stanza the client receives from now on (expect() consumes)."""
    seen: list[ET.Element] = list(client.inbox.items)
    put = client.inbox.put

    def put_and_keep(el: ET.Element) -> None:
        seen.append(el)
        put(el)

    client.inbox.put = put_and_keep
    return seen


async def rows_of(db: asyncpg.Connection, slug: str) -> list[asyncpg.Record]:
    return await db.fetch(
        """SELECT m.*, c.customer_jid, c.customer_nick, c.token
             FROM messages m JOIN conversations c ON c.id = m.conversation_id
             JOIN companies co ON co.id = c.company_id
            WHERE co.slug = $1 ORDER BY m.id""",
        slug,
    )


def presence_key(jid: str) -> str:
    return f"{REDIS_PREFIX}:{DOMAIN}:presence:{jid}"


async def online(rds: aioredis.Redis, jid: str, resources: set[str]) -> None:
    async def check() -> bool:
        return set(await rds.hkeys(presence_key(jid))) == resources

    await eventually(check, f"{jid} online with {sorted(resources)} in Redis")


# -- XEP-0184 receipts and XEP-0333 markers -------------------------------------


async def test_receipts_and_markers(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection
) -> None:
    company = await make_company(agents=2)
    agent_a = await clients(company.agents[0])
    agent_b = await clients(company.agents[1])
    customer = await clients(await register("customer"))

    mid = new_id()
    customer.send_xml(chat(company.jid, "receipt please", mid, REQUEST))
    receipt = await customer.inbox.expect(receipt_for(mid))
    # A receipt means "archived": the row is there when it arrives.
    row = await db.fetchrow("SELECT body, direction FROM messages WHERE client_id = $1", mid)
    assert row is not None and (row["body"], row["direction"]) == ("receipt please", "in")
    assert bare(receipt.get("from")) == company.jid
    got = await agent_a.inbox.expect(is_message("receipt please"))
    await agent_b.inbox.expect(is_message("receipt please"))
    conv_jid = bare(got.get("from"))
    assert got.get("id") == mid  # agents can refer to the customer's message id

    # The agent's own receipt request is answered by the conversation address.
    rid = new_id()
    agent_a.send_xml(chat(conv_jid, "noted", rid, REQUEST))
    agent_receipt = await agent_a.inbox.expect(receipt_for(rid))
    assert bare(agent_receipt.get("from")) == conv_jid
    assert await db.fetchval("SELECT body FROM messages WHERE client_id = $1", rid) == "noted"
    reply = await customer.inbox.expect(is_message("noted", frm=company.jid))
    assert child(reply, "request", RECEIPTS) is not None  # the customer may acknowledge it

    # Both agents acknowledge and display the customer's message: the customer
    # hears of each once, from the company.
    for agent in (agent_a, agent_b):
        agent.send_xml(chat(conv_jid, None, extra=f'<received xmlns="{RECEIPTS}" id="{mid}"/>'))
        agent.send_xml(chat(conv_jid, None, extra=f'<displayed xmlns="{MARKERS}" id="{mid}"/>'))
    received = await customer.inbox.expect(receipt_for(mid))
    displayed = await customer.inbox.expect(marker_for("displayed", mid))
    for el in (received, displayed):
        assert bare(el.get("from")) == company.jid
        assert child(el, "body") is None
    await customer.inbox.absent(
        lambda el: receipt_for(mid)(el) or marker_for("displayed", mid)(el), wait=1.0
    )
    assert (
        await db.fetchval(
            "SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id "
            "JOIN companies co ON co.id = c.company_id WHERE co.slug = $1",
            company.slug,
        )
        == 2
    )


# -- XEP-0085 chat states -----------------------------------------------------------


async def test_chat_states_travel_and_are_not_archived(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection
) -> None:
    company = await make_company(agents=2)
    agent_a = await clients(company.agents[0])
    agent_b = await clients(company.agents[1])
    customer = await clients(await register("customer"))
    customer.send_xml(chat(company.jid, "hello", extra=f'<active xmlns="{CHATSTATES}"/>'))
    got = await agent_a.inbox.expect(is_message("hello"))
    await agent_b.inbox.expect(is_message("hello"))
    conv_jid = bare(got.get("from"))

    customer.send_xml(chat(company.jid, None, extra=f'<composing xmlns="{CHATSTATES}"/>'))
    for agent in (agent_a, agent_b):
        state = await agent.inbox.expect(has_child("composing", CHATSTATES))
        assert bare(state.get("from")) == conv_jid
        assert child(state, "body") is None

    agent_b.send_xml(chat(conv_jid, None, extra=f'<paused xmlns="{CHATSTATES}"/>'))
    paused = await customer.inbox.expect(has_child("paused", CHATSTATES))
    assert bare(paused.get("from")) == company.jid
    assert child(paused, "body") is None
    # Never an error for a chat state.
    await customer.inbox.absent(lambda el: el.get("type") == "error", wait=0.3)
    assert [r["body"] for r in await rows_of(db, company.slug)] == ["hello"]


# -- XEP-0359 retransmissions and stanza ids ----------------------------------------


async def test_retransmissions_are_archived_and_delivered_once(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection
) -> None:
    company = await make_company(agents=1)
    agent = await clients(company.agents[0])
    customer = await clients(await register("customer"))

    # Same origin-id, new stanza id each time (a client resending after a reconnect);
    # sent back to back, so both may share one batch.
    oid = new_id()
    origin = f'<origin-id xmlns="{SID}" id="{oid}"/>' + REQUEST
    first, second = new_id(), new_id()
    customer.send_xml(chat(company.jid, "once by origin-id", first, origin))
    customer.send_xml(chat(company.jid, "once by origin-id", second, origin))
    await customer.inbox.expect(receipt_for(first, company.jid))
    await customer.inbox.expect(receipt_for(second, company.jid))
    got = await agent.inbox.expect(is_message("once by origin-id"))

    # No origin-id, the same stanza id: resent after the first was acknowledged.
    same = new_id()
    for _ in range(2):
        customer.send_xml(chat(company.jid, "once by id", same, REQUEST))
        await customer.inbox.expect(receipt_for(same, company.jid))
    got_by_id = await agent.inbox.expect(is_message("once by id"))
    await agent.inbox.absent(
        lambda el: is_message("once by origin-id")(el) or is_message("once by id")(el), wait=1.0
    )

    rows = await rows_of(db, company.slug)
    assert [(r["body"], r["client_key"]) for r in rows] == [
        ("once by origin-id", f"o:{oid}"),
        ("once by id", f"i:{same}"),
    ]
    conv_jid = f"{company.slug}+{rows[0]['token']}@{DOMAIN}"
    for delivered, row in ((got, rows[0]), (got_by_id, rows[1])):
        sid = child(delivered, "stanza-id", SID)
        assert sid is not None, xml(delivered)
        assert (sid.get("id"), sid.get("by")) == (row["stanza_id"], conv_jid)
        assert bare(delivered.get("from")) == conv_jid
    assert child(got, "origin-id", SID) is not None

    # The agent's retransmission: archived once, the customer gets it once.
    aid = new_id()
    for _ in range(2):
        agent.send_xml(chat(conv_jid, "answer once", aid, REQUEST))
        await agent.inbox.expect(receipt_for(aid, conv_jid))
    answer = await customer.inbox.expect(is_message("answer once"))
    await customer.inbox.absent(is_message("answer once"), wait=0.5)
    row = await db.fetchrow("SELECT stanza_id FROM messages WHERE client_id = $1", aid)
    sid = child(answer, "stanza-id", SID)
    assert row is not None and sid is not None
    assert (sid.get("id"), sid.get("by")) == (row["stanza_id"], company.jid)
    assert len(await rows_of(db, company.slug)) == 3


# -- XEP-0172 nicknames ---------------------------------------------------------------


async def test_customer_nick_is_shown_to_agents_only(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection
) -> None:
    company = await make_company(agents=1)
    agent = await clients(company.agents[0])
    customer = await clients(await register("customer"))
    outsider = await clients(await register("outsider"))

    customer.send_xml(
        chat(company.jid, "hi, Anna here", extra=f'<nick xmlns="{NICK}">Anna K.</nick>')
    )
    got = await agent.inbox.expect(is_message("hi, Anna here"))
    assert text_of(got, "nick") == "Anna K."
    conv_jid = bare(got.get("from"))
    [row] = await rows_of(db, company.slug)
    assert row["customer_nick"] == "Anna K."

    card = await iq(agent, conv_jid, f'<vCard xmlns="{VCARD}"/>')
    assert card.get("type") == "result", xml(card)
    vcard = child(card, "vCard", VCARD)
    assert vcard is not None and text_of(vcard, "FN") == "Anna K."
    info = await iq(agent, conv_jid, f'<query xmlns="{DISCO_INFO}"/>')
    identity = child(child(info, "query", DISCO_INFO) or ET.Element("x"), "identity")
    assert identity is not None and identity.get("name") == "Anna K."

    # Later messages without <nick/> keep it.
    customer.send_xml(chat(company.jid, "still Anna"))
    again = await agent.inbox.expect(is_message("still Anna"))
    assert text_of(again, "nick") == "Anna K."

    for stranger in (outsider, customer):
        denied = await iq(stranger, conv_jid, f'<vCard xmlns="{VCARD}"/>')
        assert condition(denied) == "forbidden", xml(denied)
        assert "Anna" not in xml(denied)


async def test_customer_without_nick_gets_a_stable_label(
    make_company: MakeCompany, clients: Any
) -> None:
    company = await make_company(agents=1)
    agent = await clients(company.agents[0])
    customer_account = await register("customer")
    customer = await clients(customer_account)
    other = await clients(await register("customer"))

    labels = []
    for body in ("first", "second"):
        customer.send_xml(chat(company.jid, body))
        got = await agent.inbox.expect(is_message(body))
        labels.append(text_of(got, "nick"))
    conv_jid = bare(got.get("from"))
    label = labels[0]
    assert label and labels == [label, label]
    assert customer_account.user not in label
    card = await iq(agent, conv_jid, f'<vCard xmlns="{VCARD}"/>')
    vcard = child(card, "vCard", VCARD)
    assert vcard is not None and text_of(vcard, "FN") == label

    other.send_xml(chat(company.jid, "from someone else"))
    got_other = await agent.inbox.expect(is_message("from someone else"))
    assert text_of(got_other, "nick") not in (None, "", label)


# -- privacy ----------------------------------------------------------------------------


async def test_agents_never_see_the_customer_jid(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection
) -> None:
    company = await make_company(agents=1)
    customer_account = await register("customer")
    customer = await clients(customer_account)
    # Written while no agent is online: delivered later from the archive, with <delay/>.
    customer.send_xml(chat(company.jid, "waiting message", extra=REQUEST))
    await customer.inbox.expect(lambda el: child(el, "received", RECEIPTS) is not None)

    agent_client = await clients(company.agents[0], announce=False)
    seen = record(agent_client)
    agent_client.send_presence()
    pending = await agent_client.inbox.expect(is_message("waiting message"))
    conv_jid = bare(pending.get("from"))

    jid = customer_account.jid
    leaky = (
        f'<nick xmlns="{NICK}">Bob</nick>'
        f"<thread>t-{new_id()}</thread>"
        f'<addresses xmlns="http://jabber.org/protocol/address">'
        f'<address type="ofrom" jid="{jid}"/></addresses>'
        f'<x xmlns="jabber:x:oob"><url>https://example.org/pic.png</url></x>'
        f'<markable xmlns="{MARKERS}"/><active xmlns="{CHATSTATES}"/>'
        f'<origin-id xmlns="{SID}" id="{new_id()}"/>' + REQUEST
    )
    customer.send_xml(chat(company.jid, "hello with everything", extra=leaky))
    await agent_client.inbox.expect(is_message("hello with everything"))
    customer.send_xml(chat(company.jid, None, extra=f'<composing xmlns="{CHATSTATES}"/>'))
    await agent_client.inbox.expect(has_child("composing", CHATSTATES))
    reply_id = new_id()
    agent_client.send_xml(chat(conv_jid, "hello Bob", reply_id, REQUEST))
    await customer.inbox.expect(is_message("hello Bob"))
    customer.send_xml(
        chat(company.jid, None, extra=f'<displayed xmlns="{MARKERS}" id="{reply_id}"/>')
    )
    await agent_client.inbox.expect(marker_for("displayed", reply_id))
    customer.send_xml(
        chat(company.jid, None, extra=f'<received xmlns="{RECEIPTS}" id="{reply_id}"/>')
    )
    await agent_client.inbox.expect(receipt_for(reply_id))
    for payload in (f'<vCard xmlns="{VCARD}"/>', f'<query xmlns="{DISCO_INFO}"/>'):
        answer = await iq(agent_client, conv_jid, payload)
        assert answer.get("type") == "result", xml(answer)
    for payload in (f'<query xmlns="{DISCO_ITEMS}"/>', f'<ping xmlns="{PING}"/>'):
        await iq(agent_client, conv_jid, payload)
    await iq(agent_client, company.jid, f'<vCard xmlns="{VCARD}"/>')

    stanzas = [xml(el) for el in seen]
    from_service = [s for s in stanzas if DOMAIN in s]
    assert len(from_service) >= 10, stanzas  # the scan covers what the component sent
    for text in stanzas:
        assert jid not in text, text
        assert customer_account.user not in text, text
    # The archive, of course, knows who wrote.
    rows = await rows_of(db, company.slug)
    assert {r["customer_jid"] for r in rows} == {jid}


# -- limits --------------------------------------------------------------------------


async def test_customer_rate_limit_and_body_length(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection
) -> None:
    company = await make_company(agents=1)
    agent = await clients(company.agents[0])
    customer = await clients(await register("customer"))
    ids = [new_id() for _ in range(31)]  # the default limit is 30 per minute
    for n, mid in enumerate(ids):
        customer.send_xml(chat(company.jid, f"burst {n}", mid, REQUEST))
    refused = await customer.inbox.expect(is_error("resource-constraint", frm=company.jid))
    assert refused.get("id") == ids[30]
    assert error_type(refused) == "wait"
    for mid in ids[:30]:
        await customer.inbox.expect(receipt_for(mid))
    for n in range(30):
        await agent.inbox.expect(is_message(f"burst {n}"))
    await agent.inbox.absent(is_message("burst 30"), wait=0.5)
    rows = await rows_of(db, company.slug)
    assert [r["client_id"] for r in rows] == ids[:30]
    await customer.inbox.absent(receipt_for(ids[30]), wait=0.1)

    long_id = new_id()
    other = await clients(await register("customer"))
    other.send_xml(chat(company.jid, "x" * 10_001, long_id))
    too_long = await other.inbox.expect(is_error("policy-violation", frm=company.jid))
    assert too_long.get("id") == long_id
    assert error_type(too_long) == "modify"
    at_limit = "y" * 10_000
    other.send_xml(chat(company.jid, at_limit, extra=REQUEST))
    await other.inbox.expect(lambda el: child(el, "received", RECEIPTS) is not None)
    assert [len(r["body"]) for r in await rows_of(db, company.slug)][30:] == [10_000]


# -- XEP-0030 / XEP-0059 / XEP-0199 and IQ errors -------------------------------------


async def test_disco_items_are_paged_with_rsm(
    component: ComponentProcess, clients: Any, db: asyncpg.Connection
) -> None:
    # Three companies next to each other in name order (the items' order):
    # nothing can sort between them.
    prefix = f"t{RUN}-rsm{new_id()[:6]}"
    slugs = [f"{prefix}-{n}" for n in "abc"]
    for slug in slugs:
        result = await orgchat("company", "add", slug, "--name", f"Paged {slug}")
        assert result.code == 0, result.err
    customer = await clients(await register("customer"))

    async def all_listed() -> list[str] | None:
        items, _ = page(await iq(customer, DOMAIN, f'<query xmlns="{DISCO_ITEMS}"/>'))
        return items if {f"{s}@{DOMAIN}" for s in slugs} <= set(items) else None

    def page(reply: ET.Element) -> tuple[list[str], ET.Element | None]:
        assert reply.get("type") == "result", xml(reply)
        query = child(reply, "query", DISCO_ITEMS)
        assert query is not None
        items = [el.get("jid") or "" for el in query if local(el.tag) == "item"]
        return items, child(query, "set", RSM)

    everything = await eventually(all_listed, "new companies in disco#items")
    first_page, rsm = page(
        await iq(
            customer,
            DOMAIN,
            f'<query xmlns="{DISCO_ITEMS}"><set xmlns="{RSM}"><max>2</max></set></query>',
        )
    )
    assert len(first_page) == 2
    assert rsm is not None
    first, last = child(rsm, "first", RSM), child(rsm, "last", RSM)
    assert first is not None and last is not None
    assert (first.text, last.text, first.get("index")) == (first_page[0], first_page[1], "0")
    total = int(text_of(rsm, "count") or "-1")
    assert total == await db.fetchval("SELECT count(*) FROM companies")
    assert everything[:2] == first_page and len(everything) == total

    # The page after ours[0] holds exactly ours[1] and ours[2].
    after = f"{slugs[0]}@{DOMAIN}"
    next_page, rsm = page(
        await iq(
            customer,
            DOMAIN,
            f'<query xmlns="{DISCO_ITEMS}"><set xmlns="{RSM}"><max>2</max>'
            f"<after>{after}</after></set></query>",
        )
    )
    assert next_page == [f"{s}@{DOMAIN}" for s in slugs[1:]]
    assert rsm is not None and text_of(rsm, "count") == str(total)
    first = child(rsm, "first", RSM)
    assert first is not None and first.get("index") == str(everything.index(next_page[0]))
    # Walking the pages from the start gives every company once, in order.
    walked: list[str] = []
    cursor = ""
    while True:
        after_el = f"<after>{cursor}</after>" if cursor else ""
        items, rsm = page(
            await iq(
                customer,
                DOMAIN,
                f'<query xmlns="{DISCO_ITEMS}"><set xmlns="{RSM}"><max>7</max>'
                f"{after_el}</set></query>",
            )
        )
        if not items:
            break
        walked += items
        assert rsm is not None
        cursor = text_of(rsm, "last") or ""
    assert walked == everything
    unknown_after = await iq(
        customer,
        DOMAIN,
        f'<query xmlns="{DISCO_ITEMS}"><set xmlns="{RSM}"><after>t{RUN}-nobody@{DOMAIN}</after>'
        "</set></query>",
    )
    assert condition(unknown_after) == "item-not-found"
    for slug in slugs:
        assert (await orgchat("company", "remove", slug)).code == 0


async def test_disco_info_ping_and_unsupported_iqs(make_company: MakeCompany, clients: Any) -> None:
    company = await make_company(agents=0, name="Info Shop")
    customer = await clients(await register("customer"))

    service = await iq(customer, DOMAIN, f'<query xmlns="{DISCO_INFO}"/>')
    query = child(service, "query", DISCO_INFO)
    assert service.get("type") == "result" and query is not None
    identity = child(query, "identity")
    assert identity is not None and identity.get("category") == "component"
    features = {el.get("var") for el in query if local(el.tag) == "feature"}
    assert {DISCO_INFO, DISCO_ITEMS, RSM, PING} <= features

    info = await iq(customer, company.jid, f'<query xmlns="{DISCO_INFO}"/>')
    query = child(info, "query", DISCO_INFO)
    assert info.get("type") == "result" and query is not None
    identity = child(query, "identity")
    assert identity is not None and identity.get("name") == "Info Shop"
    features = {el.get("var") for el in query if local(el.tag) == "feature"}
    assert {RECEIPTS, CHATSTATES, MARKERS, SID, NICK} <= features

    nobody = f"t{RUN}-nobody-{new_id()}@{DOMAIN}"
    missing = await iq(customer, nobody, f'<query xmlns="{DISCO_INFO}"/>')
    assert condition(missing) == "item-not-found"
    assert missing.get("from") == nobody

    for target in (DOMAIN, company.jid):
        pong = await iq(customer, target, f'<ping xmlns="{PING}"/>')
        assert pong.get("type") == "result", xml(pong)
    assert condition(await iq(customer, nobody, f'<ping xmlns="{PING}"/>')) == "item-not-found"

    for payload in ('<query xmlns="jabber:iq:last"/>', '<gizmo xmlns="urn:example:made-up"/>'):
        for target in (DOMAIN, company.jid):
            for itype in ("get", "set"):
                answer = await iq(customer, target, payload, itype)
                assert condition(answer) in {"feature-not-implemented", "service-unavailable"}, xml(
                    answer
                )
    for payload in (f'<query xmlns="{DISCO_INFO}"/>', f'<vCard xmlns="{VCARD}"/>'):
        answer = await iq(customer, company.jid, payload, "set")
        assert answer.get("type") == "error" and condition(answer), xml(answer)


# -- messages the component does not route ---------------------------------------------


async def test_unroutable_messages_get_answers(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection
) -> None:
    company = await make_company(agents=1)
    agent = await clients(company.agents[0])
    customer = await clients(await register("customer"))

    customer.send_xml(chat(DOMAIN, "how does this work?"))
    help_text = await customer.inbox.expect(is_message(frm=DOMAIN))
    body = text_of(help_text, "body") or ""
    assert DOMAIN in body and "@" in body

    cases = {
        "bad-request": (
            f'<message to="{company.jid}" type="groupchat" id="%s"><body>all</body></message>'
        ),
        "feature-not-implemented": chat(
            company.jid, None, "%s", '<x xmlns="urn:example:unknown"/>'
        ),
        "not-acceptable": chat(
            company.jid,
            "I sent you an OMEMO encrypted message but your client doesn't seem to support that.",
            "%s",
            '<encrypted xmlns="eu.siacs.conversations.axolotl"><header sid="1"><iv>AA==</iv>'
            "</header><payload>AA==</payload></encrypted>",
        ),
    }
    for expected, template in cases.items():
        mid = new_id()
        customer.send_xml(template.replace("%s", mid, 1))
        err = await customer.inbox.expect(is_error(expected, frm=company.jid))
        assert err.get("id") == mid
    await agent.inbox.absent(
        lambda el: local(el.tag) == "message" and el.get("type") != "headline", wait=0.5
    )
    assert await rows_of(db, company.slug) == []


async def test_presence_subscription_to_companies(make_company: MakeCompany, clients: Any) -> None:
    company = await make_company(agents=0, name="Subscribe Shop")
    customer = await clients(await register("customer"))

    customer.send_xml(f'<presence to="{company.jid}" type="subscribe"/>')
    await customer.inbox.expect(
        lambda el: (
            local(el.tag) == "presence"
            and el.get("type") == "subscribed"
            and bare(el.get("from")) == company.jid
        )
    )
    available = await customer.inbox.expect(
        lambda el: (
            local(el.tag) == "presence"
            and el.get("type") is None
            and bare(el.get("from")) == company.jid
        )
    )
    assert text_of(available, "status") == "Subscribe Shop"

    nobody = f"t{RUN}-nobody-{new_id()}@{DOMAIN}"
    customer.send_xml(f'<presence to="{nobody}" type="subscribe"/>')
    await customer.inbox.expect(
        lambda el: (
            local(el.tag) == "presence"
            and el.get("type") == "unsubscribed"
            and bare(el.get("from")) == nobody
        )
    )
    await customer.inbox.absent(
        lambda el: (
            local(el.tag) == "presence"
            and bare(el.get("from")) == nobody
            and el.get("type") in (None, "subscribed")
        ),
        wait=0.5,
    )


# -- pending messages --------------------------------------------------------------------


async def test_pending_messages_reach_the_first_agent_once(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection
) -> None:
    company = await make_company(agents=2)
    anna, boris = await clients(await register("anna")), await clients(await register("boris"))
    sent = [(anna, "anna 1"), (boris, "boris 1"), (anna, "anna 2")]
    for customer, body in sent:
        mid = new_id()
        customer.send_xml(chat(company.jid, body, mid, REQUEST))
        await customer.inbox.expect(receipt_for(mid))
    rows = await rows_of(db, company.slug)
    assert [(r["body"], r["pending"]) for r in rows] == [(b, True) for _, b in sent]

    first = await clients(company.agents[0])
    messages = await eventually(
        lambda: _take_messages(first, len(sent)), "pending messages delivered"
    )
    assert [text_of(m, "body") for m in messages] == [b for _, b in sent]  # in order
    for m, row in zip(messages, rows, strict=True):
        delay = child(m, "delay", DELAY)
        assert delay is not None and delay.get("stamp"), xml(m)
        assert delay.get("from") == DOMAIN
        assert bare(m.get("from")) == f"{company.slug}+{row['token']}@{DOMAIN}"
        sid = child(m, "stanza-id", SID)
        assert sid is not None and sid.get("id") == row["stanza_id"]
    assert bare(messages[0].get("from")) == bare(messages[2].get("from"))
    assert bare(messages[0].get("from")) != bare(messages[1].get("from"))
    assert not any(r["pending"] for r in await rows_of(db, company.slug))

    second = await clients(company.agents[1])
    await second.inbox.absent(is_message(), wait=1.0)
    await first.inbox.absent(is_message(), wait=0.1)  # and no second copy for the first


async def _take_messages(client: Any, count: int) -> list[ET.Element] | None:
    """The first ``count`` chat messages in the inbox, in arrival order (consumed)."""
    found = [el for el in client.inbox.items if is_message()(el) and child(el, "body") is not None]
    if len(found) < count:
        return None
    for el in found[:count]:
        client.inbox.items.remove(el)
    return found[:count]


# -- agents with several devices ----------------------------------------------------------


async def test_agent_with_two_devices(
    make_company: MakeCompany,
    clients: Any,
    db: asyncpg.Connection,
    rds: aioredis.Redis,
) -> None:
    company = await make_company(agents=1)
    account = company.agents[0]
    phone = await clients(account, resource="phone")
    desk = await clients(account, resource="desk")
    await online(rds, account.jid, {"phone", "desk"})
    assert await presence_shows(rds, account.jid) == {"phone": "available", "desk": "available"}
    customer = await clients(await register("customer"))

    customer.send_xml(chat(company.jid, "to both devices"))
    for device in (phone, desk):
        got = await device.inbox.expect(is_message("to both devices"))
        assert bare(got.get("to")) == account.jid

    await phone.stop()
    await online(rds, account.jid, {"desk"})
    assert await presence_shows(rds, account.jid) == {"desk": "available"}
    mid = new_id()
    customer.send_xml(chat(company.jid, "desk only", mid, REQUEST))
    await customer.inbox.expect(receipt_for(mid))
    await desk.inbox.expect(is_message("desk only"))
    row = await db.fetchrow("SELECT pending FROM messages WHERE client_id = $1", mid)
    assert row is not None and row["pending"] is False
