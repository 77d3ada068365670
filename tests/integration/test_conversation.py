"""The core path with real clients: customer -> company -> agents -> customer.

Every test checks what each client receives, the rows in PostgreSQL and, where
it matters, the keys in Redis.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.integration.clients import chat, child, is_error, is_message, new_id, text_of
from tests.integration.conftest import (
    DOMAIN,
    REDIS_PREFIX,
    MakeCompany,
    presence_shows,
    register,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

RECEIPTS = "urn:xmpp:receipts"


@pytest.mark.parametrize("lib", ["slixmpp", "aioxmpp"])
async def test_customer_agents_customer_round_trip(
    lib: str, make_company: MakeCompany, clients: Any, db: asyncpg.Connection, rds: aioredis.Redis
) -> None:
    company = await make_company(agents=2, name="Pizza Test")
    agent_a = await clients(company.agents[0], lib)
    agent_b = await clients(company.agents[1], lib)
    customer_account = await register("customer")
    customer = await clients(customer_account, lib)

    # Both agents are online in Redis, per resource.
    for agent in company.agents:
        key = f"{REDIS_PREFIX}:{DOMAIN}:presence:{agent.jid}"
        for _ in range(50):
            if await rds.hlen(key):
                break
            await asyncio.sleep(0.1)
        assert await presence_shows(rds, agent.jid) == {"test": "available"}

    mid = new_id()
    customer.send_xml(
        chat(company.jid, "Do you have a table for four?", mid, f'<request xmlns="{RECEIPTS}"/>')
    )
    got_a = await agent_a.inbox.expect(is_message("Do you have a table for four?"))
    got_b = await agent_b.inbox.expect(is_message("Do you have a table for four?"))
    conv_jid = got_a.get("from", "").split("/")[0]
    assert conv_jid == got_b.get("from", "").split("/")[0]
    assert conv_jid.startswith(company.slug + "+") and conv_jid.endswith("@" + DOMAIN)
    assert customer_account.user not in conv_jid
    receipt = await customer.inbox.expect(lambda el: child(el, "received", RECEIPTS) is not None)
    assert receipt.get("from", "").split("/")[0] == company.jid
    assert child(receipt, "received", RECEIPTS).get("id") == mid  # type: ignore[union-attr]

    reply_id = new_id()
    agent_b.send_xml(chat(conv_jid, "Yes, at 8 pm.", reply_id))
    reply = await customer.inbox.expect(is_message("Yes, at 8 pm."))
    assert reply.get("from", "").split("/")[0] == company.jid
    stanza_id = child(reply, "stanza-id", "urn:xmpp:sid:0")
    assert stanza_id is not None and stanza_id.get("by") == company.jid

    rows = await db.fetch(
        """SELECT m.direction, m.sender_jid, m.body, m.stanza_id, m.pending, c.customer_jid, c.token
           FROM messages m JOIN conversations c ON c.id = m.conversation_id
           JOIN companies co ON co.id = c.company_id
           WHERE co.slug = $1 ORDER BY m.id""",
        company.slug,
    )
    assert [(r["direction"], r["body"]) for r in rows] == [
        ("in", "Do you have a table for four?"),
        ("out", "Yes, at 8 pm."),
    ]
    assert rows[0]["sender_jid"] == customer_account.jid
    assert rows[1]["sender_jid"] == company.agents[1].jid
    assert rows[0]["customer_jid"] == customer_account.jid
    assert conv_jid == f"{company.slug}+{rows[0]['token']}@{DOMAIN}"
    assert rows[1]["stanza_id"] == stanza_id.get("id")
    assert not any(r["pending"] for r in rows)


async def test_message_waits_for_an_agent_and_arrives_when_one_logs_in(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection
) -> None:
    company = await make_company(agents=1)
    customer = await clients(await register("customer"))
    mid = new_id()
    customer.send_xml(chat(company.jid, "Anyone there?", mid, f'<request xmlns="{RECEIPTS}"/>'))
    await customer.inbox.expect(lambda el: child(el, "received", RECEIPTS) is not None)
    row = await db.fetchrow("SELECT pending FROM messages WHERE client_id = $1", mid)
    assert row is not None and row["pending"] is True

    agent = await clients(company.agents[0])
    got = await agent.inbox.expect(is_message("Anyone there?"))
    delay = child(got, "delay", "urn:xmpp:delay")
    assert delay is not None and delay.get("stamp")
    row = await db.fetchrow("SELECT pending FROM messages WHERE client_id = $1", mid)
    assert row is not None and row["pending"] is False


async def test_agent_going_offline_stops_live_delivery(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection, rds: aioredis.Redis
) -> None:
    company = await make_company(agents=1)
    agent = await clients(company.agents[0])
    customer = await clients(await register("customer"))
    customer.send_xml(chat(company.jid, "first", new_id()))
    await agent.inbox.expect(is_message("first"))

    agent.kill()  # the connection drops without a goodbye
    key = f"{REDIS_PREFIX}:{DOMAIN}:presence:{company.agents[0].jid}"
    for _ in range(100):
        if not await rds.exists(key):
            break
        await asyncio.sleep(0.1)
    assert not await rds.exists(key)

    mid = new_id()
    customer.send_xml(chat(company.jid, "second", mid))
    for _ in range(50):
        row = await db.fetchrow("SELECT pending FROM messages WHERE client_id = $1", mid)
        if row is not None:
            break
        await asyncio.sleep(0.1)
    assert row is not None and row["pending"] is True


async def test_errors_reach_standard_clients(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection
) -> None:
    company = await make_company(agents=1)
    agent = await clients(company.agents[0])
    customer = await clients(await register("customer"))
    outsider = await clients(await register("outsider"))

    customer.send_xml(chat(f"no-such-company@{DOMAIN}", "hello", new_id()))
    err = await customer.inbox.expect(is_error("item-not-found"))
    assert err.get("from") == f"no-such-company@{DOMAIN}"

    customer.send_xml(chat(company.jid, "x" * 10_001, new_id()))
    await customer.inbox.expect(is_error("policy-violation"))

    customer.send_xml(chat(company.jid, "hi", new_id()))
    got = await agent.inbox.expect(is_message("hi"))
    conv_jid = got.get("from", "").split("/")[0]
    outsider.send_xml(chat(conv_jid, "I am not an agent", new_id()))
    await outsider.inbox.expect(is_error("forbidden"))
    customer.send_xml(chat(conv_jid, "writing to my own conversation address", new_id()))
    await customer.inbox.expect(is_error("forbidden"))

    unknown = '<x xmlns="urn:example:nothing"/>'
    customer.send_xml(
        f'<message to="{company.jid}" type="chat" id="{new_id()}">{unknown}</message>'
    )
    await customer.inbox.expect(is_error("feature-not-implemented"))
    assert await db.fetchval("SELECT count(*) FROM messages WHERE body LIKE 'I am not%'") == 0


async def test_disco_lists_companies_and_describes_them(
    make_company: MakeCompany, clients: Any
) -> None:
    company = await make_company(agents=0, name="Disco Bakery", city="Tomsk", category="bakery")
    customer = await clients(await register("customer"))
    info = await customer.plugin["xep_0030"].get_info(jid=company.jid)
    identities = info["disco_info"]["identities"]
    assert any(name == "Disco Bakery" for _, _, _, name in identities)
    assert "urn:xmpp:receipts" in info["disco_info"]["features"]
    items = await customer.plugin["xep_0030"].get_items(jid=DOMAIN)
    assert (company.jid, None, "Disco Bakery") in items["disco_items"]["items"]
    vid = new_id()
    customer.send_xml(
        f'<iq type="get" to="{company.jid}" id="{vid}"><vCard xmlns="vcard-temp"/></iq>'
    )
    result = await customer.inbox.expect(lambda el: el.get("id") == vid)
    assert result.get("type") == "result"
    card = child(result, "vCard", "vcard-temp")
    assert card is not None and text_of(card, "FN") == "Disco Bakery"
