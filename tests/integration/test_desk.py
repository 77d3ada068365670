"""The agent desk with real clients through ejabberd: XEP-0050 commands run by
aioxmpp's ad-hoc client, customers on slixmpp, state checked in PostgreSQL.

Covers every desk command (company and conversation addresses), the invalid
transitions with their errors, the assignment rule (a claimed conversation
reaches its agent alone while online), reopening by the customer, internal
notes that never reach the customer, canned replies, and the admin commands.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.integration.clients import child, is_message, local, new_id, text_of
from tests.integration.conftest import (
    RUN,
    VHOST,
    Account,
    MakeCompany,
    orgchat,
    presence_shows,
    register,
    roster_of,
    wait_in_roster,
)
from tests.integration.test_requests import notes, run_command, table

if TYPE_CHECKING:
    from tests.integration.conftest import TestCompany

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

AGENT_NODES = {"conversations", "claim", "transfer", "resolve", "reopen", "note", "canned-reply"}
ADMIN_NODES = {"agents", "hours", "away-message", "canned-replies", "reaction-window"}
CONVERSATION_NODES = {"claim", "transfer", "resolve", "reopen", "note", "canned-reply"}


async def refusal(client: Any, to: str, node: str, *stages: dict[str, list[str]]) -> Any:
    """Run a command that must fail; its aioxmpp error (``condition``, ``text``, TYPE)."""
    import aioxmpp.errors

    with pytest.raises(aioxmpp.errors.XMPPError) as caught:
        await run_command(client, to, node, *stages)
    return caught.value


def condition(error: Any) -> str:
    return str(error.condition.value[1])


async def online(rds: aioredis.Redis, jid: str, want: bool = True, wait: float = 10) -> None:
    for _ in range(int(wait / 0.05)):
        if bool(await presence_shows(rds, jid)) == want:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{jid} never {'online' if want else 'offline'}")


async def add_admin(company: TestCompany) -> Account:
    admin = await register("admin")
    result = await orgchat("agent", "add", company.slug, admin.jid, "--admin")
    assert result.code == 0, result.err
    await wait_in_roster(admin, company.jid)
    return admin


async def commands_at(client: Any, jid: str) -> set[str]:
    import aioxmpp
    import aioxmpp.adhoc

    adhoc = client.client.summon(aioxmpp.adhoc.AdHocClient)
    return {item.node for item in await adhoc.get_commands(aioxmpp.JID.fromstr(jid))}


async def first_message(customer: Any, agent: Any, company: TestCompany, body: str) -> str:
    """The customer writes; the agent gets it; returns the conversation's address."""
    customer.send_xml(
        f'<message to="{company.jid}" type="chat" id="{new_id()}"><body>{body}</body></message>'
    )
    got = await agent.inbox.expect(is_message(body))
    return (got.get("from") or "").split("/")[0]


def say(customer: Any, company: TestCompany, body: str) -> None:
    customer.send_xml(
        f'<message to="{company.jid}" type="chat" id="{new_id()}"><body>{body}</body></message>'
    )


async def vcard(client: Any, jid: str) -> Any:
    iid = new_id()
    client.send_xml(f'<iq type="get" to="{jid}" id="{iid}"><vCard xmlns="vcard-temp"/></iq>')
    reply = await client.inbox.expect(lambda el: local(el.tag) == "iq" and el.get("id") == iid)
    card = child(reply, "vCard", "vcard-temp")
    assert card is not None, reply
    return card


async def desk_row(db: asyncpg.Connection, conv: str) -> tuple[str, str | None]:
    token = conv.split("@", 1)[0].split("+")[1]
    row = await db.fetchrow(
        "SELECT d.status, d.assignee FROM conversations c "
        "LEFT JOIN desk_conversations d ON d.conversation_id = c.id WHERE c.token = $1",
        token,
    )
    assert row is not None
    return (row["status"] or "open", row["assignee"])


async def events(db: asyncpg.Connection, conv: str) -> list[tuple[str, str, str | None]]:
    token = conv.split("@", 1)[0].split("+")[1]
    rows = await db.fetch(
        "SELECT e.kind, e.actor_kind, e.to_agent FROM desk_events e "
        "JOIN conversations c ON c.id = e.conversation_id WHERE c.token = $1 ORDER BY e.id",
        token,
    )
    return [(r["kind"], r["actor_kind"], r["to_agent"]) for r in rows]


async def test_the_desk_from_standard_clients(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection, rds: aioredis.Redis
) -> None:
    import aioxmpp.adhoc

    shop = await make_company(agents=2, name="Desk Shop")
    admin_account = await add_admin(shop)
    customer = await clients(await register("customer"))
    mario = await clients(shop.agents[0], lib="aioxmpp")
    luigi = await clients(shop.agents[1], lib="aioxmpp")
    admin = await clients(admin_account, lib="aioxmpp")
    a, b = shop.agents[0].jid, shop.agents[1].jid
    for account in (*shop.agents, admin_account):
        await online(rds, account.jid)

    # Who sees which commands.
    assert await commands_at(mario, shop.jid) >= AGENT_NODES
    assert not ADMIN_NODES & await commands_at(mario, shop.jid)
    assert await commands_at(admin, shop.jid) >= AGENT_NODES | ADMIN_NODES
    stranger = await clients(await register("stranger"), lib="aioxmpp")
    assert not (AGENT_NODES | ADMIN_NODES) & await commands_at(stranger, shop.jid)
    assert condition(await refusal(stranger, shop.jid, "conversations")) == "forbidden"
    assert condition(await refusal(mario, shop.jid, "hours")) == "forbidden"

    conv = await first_message(customer, mario, shop, "Do you repair bikes?")
    await luigi.inbox.expect(is_message("Do you repair bikes?"))
    assert await commands_at(mario, conv) >= CONVERSATION_NODES
    assert condition(await refusal(stranger, conv, "claim")) == "forbidden"

    # The list: the new conversation, unclaimed.
    listed = await run_command(mario, shop.jid, "conversations")
    assert listed.status == aioxmpp.adhoc.CommandStatus.COMPLETED
    [row] = table(listed)
    assert row["conversation"] == conv and row["assignee"] == ""
    assert row["last"] == "Customer: Do you repair bikes?"

    # Mario claims it from the company's address: the customer's messages reach him alone.
    claimed = await run_command(mario, shop.jid, "claim", {"conversation": [conv]})
    assert "You claimed" in notes(claimed)
    assert await desk_row(db, conv) == ("open", a)
    say(customer, shop, "Mine is a road bike.")
    await mario.inbox.expect(is_message("Mine is a road bike."))
    await luigi.inbox.absent(is_message("Mine is a road bike."))
    assert "yours already" in notes(await run_command(mario, conv, "claim"))

    # Invalid moves of another (non-admin) agent: forbidden, with a text naming the claimer.
    for node, stages in (
        ("claim", ()),
        ("resolve", ()),
        ("transfer", ({"agent": [b]},)),
    ):
        error = await refusal(luigi, conv, node, *stages)
        assert (condition(error), error.TYPE.value) == ("forbidden", "auth"), node
        assert a in (error.text or ""), error.text
    # Transferring to someone who is not an agent of the company.
    error = await refusal(mario, conv, "transfer", {"agent": [f"t{RUN}-nobody@{VHOST}"]})
    assert condition(error) == "item-not-found" and "is not an agent of Desk Shop" in error.text
    error = await refusal(mario, conv, "transfer", {"agent": ["not a jid"]})
    assert condition(error) == "bad-request"
    # A conversation of another company is not found.
    other = await make_company(agents=0, name="Other Shop")
    error = await refusal(
        mario, shop.jid, "claim", {"conversation": [conv.replace(shop.slug, other.slug)]}
    )
    assert condition(error) == "item-not-found"

    # Mario transfers it to Luigi.
    moved = await run_command(mario, shop.jid, "transfer", {"conversation": [conv], "agent": [b]})
    assert f"is {b}'s now" in notes(moved)
    say(customer, shop, "Is Saturday fine?")
    await luigi.inbox.expect(is_message("Is Saturday fine?"))
    await mario.inbox.absent(is_message("Is Saturday fine?"))

    # Mario may not resolve Luigi's conversation; the company admin may.
    assert condition(await refusal(mario, shop.jid, "resolve", {"conversation": [conv]})) == (
        "forbidden"
    )
    resolved = await run_command(admin, shop.jid, "resolve", {"conversation": [conv]})
    assert "Resolved" in notes(resolved)
    assert await desk_row(db, conv) == ("resolved", b)
    for node in ("resolve", "claim", "transfer"):
        stages = ({"agent": [a]},) if node == "transfer" else ()
        error = await refusal(luigi, conv, node, *stages)
        assert (condition(error), error.TYPE.value) == ("not-allowed", "cancel"), node
    # Nothing open is offered any more; the resolved one is offered for reopening.
    assert "No open conversations" in notes(await run_command(mario, shop.jid, "resolve"))
    assert "No open conversations" in notes(await run_command(mario, shop.jid, "conversations"))

    # The customer writes again: reopened (recorded), and it reaches Luigi, who holds it.
    say(customer, shop, "One more question")
    await luigi.inbox.expect(is_message("One more question"))
    await mario.inbox.absent(is_message("One more question"), wait=0.5)
    assert await desk_row(db, conv) == ("open", b)
    error = await refusal(mario, conv, "reopen")
    assert condition(error) == "not-allowed" and "open already" in error.text

    # Resolve and reopen by hand, from both kinds of address.
    await run_command(luigi, conv, "resolve")
    reopened = await run_command(mario, shop.jid, "reopen", {"conversation": [conv]})
    assert "Reopened" in notes(reopened) and b in notes(reopened)

    # Luigi gives it back to everyone.
    released = await run_command(luigi, conv, "transfer", {"agent": ["everyone"]})
    assert "every online agent" in notes(released)
    say(customer, shop, "Hello again")
    await mario.inbox.expect(is_message("Hello again"))
    await luigi.inbox.expect(is_message("Hello again"))

    # An internal note: stored, listed back to the agent, never sent to the customer.
    noted = await run_command(
        mario, conv, "note", {"note": ["Customer prefers calls after 18:00", "VIP"]}
    )
    assert "only the company's agents" in notes(noted)
    assert [r["note"] for r in table(noted)] == ["Customer prefers calls after 18:00\nVIP"]
    await run_command(luigi, shop.jid, "note", {"conversation": [conv], "note": ["Second note"]})
    await customer.inbox.absent(lambda el: "VIP" in (text_of(el, "body") or ""))
    await customer.inbox.absent(lambda el: "Second note" in (text_of(el, "body") or ""))
    assert (
        await db.fetchval(
            "SELECT count(*) FROM messages WHERE body LIKE '%VIP%' OR body = 'Second note'"
        )
        == 0
    )

    # Canned replies: added by the admin, sent by an agent, archived like any message.
    assert "No canned replies" in notes(await run_command(mario, conv, "canned-reply"))
    added = await run_command(
        admin,
        shop.jid,
        "canned-replies",
        {"title": ["Prices"], "body": ["A service costs 25 EUR.", "Parts extra."]},
    )
    assert "Added “Prices”" in notes(added)
    await run_command(
        admin, shop.jid, "canned-replies", {"title": ["Hours"], "body": ["9 to 18 daily."]}
    )
    error = await refusal(
        admin, shop.jid, "canned-replies", {"title": ["Hours"], "body": ["again"]}
    )
    assert condition(error) == "conflict"
    error = await refusal(admin, shop.jid, "canned-replies", {"title": ["No text"]})
    assert condition(error) == "bad-request"
    prices = await db.fetchval(
        "SELECT r.id FROM canned_replies r JOIN companies c ON c.id = r.company_id "
        "WHERE c.slug = $1 AND r.title = 'Prices'",
        shop.slug,
    )
    sent = await run_command(
        mario, shop.jid, "canned-reply", {"conversation": [conv], "reply": [str(prices)]}
    )
    assert "A service costs 25 EUR." in notes(sent)
    got = await customer.inbox.expect(is_message("A service costs 25 EUR.\nParts extra."))
    assert (got.get("from") or "").split("/")[0] == shop.jid
    row = await db.fetchrow(
        "SELECT direction, sender_jid FROM messages WHERE body = 'A service costs 25 EUR.\n"
        "Parts extra.'"
    )
    assert row is not None and (row["direction"], row["sender_jid"]) == ("out", a)
    hours_id = await db.fetchval(
        "SELECT id FROM canned_replies WHERE title = 'Hours' AND body = '9 to 18 daily.'"
    )
    await run_command(luigi, conv, "canned-reply", {"reply": [str(hours_id)]})
    await customer.inbox.expect(is_message("9 to 18 daily."))
    removed = await run_command(admin, shop.jid, "canned-replies", {"remove": [str(prices)]})
    assert [r["title"] for r in table(removed)] == ["Hours"]

    # Every change is in the audit log.
    assert await events(db, conv) == [
        ("claim", "agent", a),
        ("transfer", "agent", b),
        ("resolve", "agent", b),
        ("reopen", "customer", b),
        ("resolve", "agent", b),
        ("reopen", "agent", b),
        ("release", "agent", None),
        ("note", "agent", None),
        ("note", "agent", None),
    ]


async def test_a_claim_follows_the_claimers_presence(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection, rds: aioredis.Redis
) -> None:
    shop = await make_company(agents=2, name="Presence Shop")
    customer = await clients(await register("customer"))
    mario = await clients(shop.agents[0], lib="aioxmpp")
    luigi = await clients(shop.agents[1], lib="aioxmpp")
    for account in shop.agents:
        await online(rds, account.jid)
    conv = await first_message(customer, mario, shop, "Anyone there?")
    await luigi.inbox.expect(is_message("Anyone there?"))
    await run_command(mario, conv, "claim")

    say(customer, shop, "only for mario")
    await mario.inbox.expect(is_message("only for mario"))
    await luigi.inbox.absent(is_message("only for mario"))

    # Mario goes offline: back to every online agent.
    await mario.stop()
    await online(rds, shop.agents[0].jid, want=False)
    say(customer, shop, "mario is away")
    await luigi.inbox.expect(is_message("mario is away"))
    assert await desk_row(db, conv) == ("open", shop.agents[0].jid)  # still his

    # Back online: his again, alone.
    mario = await clients(shop.agents[0], lib="aioxmpp", resource="back")
    await online(rds, shop.agents[0].jid)
    say(customer, shop, "welcome back")
    await mario.inbox.expect(is_message("welcome back"))
    await luigi.inbox.absent(is_message("welcome back"))

    # Nobody online: the message waits, and reaches the claimer alone when both return.
    await mario.stop()
    await luigi.stop()
    await online(rds, shop.agents[0].jid, want=False)
    await online(rds, shop.agents[1].jid, want=False)
    say(customer, shop, "waiting for mario")
    await asyncio.sleep(0.5)
    assert await db.fetchval("SELECT pending FROM messages WHERE body = 'waiting for mario'")
    mario = await clients(shop.agents[0], lib="aioxmpp", resource="third")
    await mario.inbox.expect(is_message("waiting for mario"))


async def test_admin_commands(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection, rds: aioredis.Redis
) -> None:
    shop = await make_company(agents=1, name="Admin Shop")
    admin_account = await add_admin(shop)
    admin = await clients(admin_account, lib="aioxmpp")
    customer = await clients(await register("customer"))
    newcomer = await register("newcomer")

    # Manage agents: add one (into their roster), remove another.
    added = await run_command(admin, shop.jid, "agents", {"add": [newcomer.jid], "admin": ["0"]})
    assert f"added {newcomer.jid} (agent)" in notes(added).lower()
    assert {r["agent"]: r["role"] for r in table(added)} == {
        shop.agents[0].jid: "agent",
        admin_account.jid: "admin",
        newcomer.jid: "agent",
    }
    await wait_in_roster(newcomer, shop.jid)
    error = await refusal(admin, shop.jid, "agents", {"add": [newcomer.jid]})
    assert condition(error) == "conflict"
    error = await refusal(admin, shop.jid, "agents", {"remove": [f"t{RUN}-nobody@{VHOST}"]})
    assert condition(error) == "item-not-found"
    error = await refusal(admin, shop.jid, "agents", {"remove": [admin_account.jid]})
    assert condition(error) == "not-allowed"
    removed = await run_command(admin, shop.jid, "agents", {"remove": [newcomer.jid]})
    assert f"removed {newcomer.jid}" in notes(removed).lower()
    for _ in range(100):
        if not any(i["jid"] == shop.jid for i in await roster_of(newcomer)):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the company stayed in the removed agent's roster")

    # Opening hours and time zone: validated, then on the company's card.
    for bad in ({"hours": ["whenever"]}, {"timezone": ["Mars/Olympus_Mons"]}):
        error = await refusal(admin, shop.jid, "hours", bad)
        assert condition(error) == "bad-request", bad
    done = await run_command(
        admin, shop.jid, "hours", {"hours": ["Mo-Fr 08:00-20:00"], "timezone": ["Asia/Novosibirsk"]}
    )
    assert "Mo-Fr 08:00-20:00" in notes(done)
    for _ in range(100):
        card = await vcard(customer, shop.jid)
        if "Mo-Fr 08:00-20:00" in (text_of(card, "DESC") or ""):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("new opening hours not on the vCard")
    company = await db.fetchrow(
        "SELECT hours, timezone, away_message, reaction_window_s FROM companies WHERE slug = $1",
        shop.slug,
    )
    assert (company["hours"], company["timezone"]) == ("Mo-Fr 08:00-20:00", "Asia/Novosibirsk")

    # Away message and reaction window: stored on the company.
    await run_command(admin, shop.jid, "away-message", {"message": ["Back at 8.", "Sorry!"]})
    error = await refusal(admin, shop.jid, "reaction-window", {"minutes": ["0"]})
    assert condition(error) == "bad-request"
    await run_command(admin, shop.jid, "reaction-window", {"minutes": ["15"]})
    company = await db.fetchrow(
        "SELECT away_message, reaction_window_s FROM companies WHERE slug = $1", shop.slug
    )
    assert (company["away_message"], company["reaction_window_s"]) == ("Back at 8.\nSorry!", 900)
    await run_command(admin, shop.jid, "away-message", {"message": []})
    await run_command(admin, shop.jid, "reaction-window", {"minutes": []})
    company = await db.fetchrow(
        "SELECT away_message, reaction_window_s FROM companies WHERE slug = $1", shop.slug
    )
    assert (company["away_message"], company["reaction_window_s"]) == (None, None)


async def test_agents_have_each_customer_by_name_in_their_roster(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection
) -> None:
    """A conversation is a contact of its agents: named after the customer,
    grouped under the company, online while the customer is; resolved, it
    leaves their rosters, and a forgotten customer's contact goes too."""
    shop = await make_company(agents=2, name=f"Corner Shop {RUN}")
    mario = await clients(shop.agents[0])
    anna_account = await register("anna")
    anna = await clients(anna_account)
    anna.send_xml(
        f'<message to="{shop.jid}" type="chat" id="{new_id()}"><body>Fresh bread?</body>'
        '<nick xmlns="http://jabber.org/protocol/nick">Anna K.</nick></message>'
    )
    got = await mario.inbox.expect(is_message("Fresh bread?"))
    conv = (got.get("from") or "").split("/")[0]

    for agent in shop.agents:
        await wait_in_roster(agent, conv)
        [item] = [i for i in await roster_of(agent) if i["jid"] == conv]
        assert (item["nick"], item["group"], item["subscription"]) == (
            "Anna K.",
            shop.name,
            "to",
        )

    def conversation_presence(available: bool) -> Any:
        def pred(el: Any) -> bool:
            return (
                local(el.tag) == "presence"
                and (el.get("from") or "").split("/")[0] == conv
                and (el.get("type") is None) == available
            )

        return pred

    # Anna is online (her presence reaches the company once it is in her
    # roster): so is her contact, for Mario.
    await mario.inbox.expect(conversation_presence(True), wait=15)
    await anna.stop()
    await mario.inbox.expect(conversation_presence(False), wait=15)
    # Resolved: the contact leaves the rosters.
    assert (await orgchat("desk", "resolve", conv)).code == 0

    async def gone(agent: Account) -> None:
        for _ in range(200):
            if all(i["jid"] != conv for i in await roster_of(agent)):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{conv} still in {agent.jid}'s roster")

    for agent in shop.agents:
        await gone(agent)
    # Anna writes again: reopened, back in the rosters, still by her name.
    anna = await clients(anna_account)
    say(anna, shop, "And rolls?")
    await mario.inbox.expect(is_message("And rolls?"))
    for agent in shop.agents:
        await wait_in_roster(agent, conv)
    # Luigi logs in: his server probes his contacts, the component answers
    # for Anna's conversation that she is online.
    luigi = await clients(shop.agents[1])
    await luigi.inbox.expect(conversation_presence(True), wait=15)
    # Forgotten: gone from the agents' rosters with her data.
    assert (await orgchat("forget", anna_account.jid, "--yes")).code == 0
    for agent in shop.agents:
        await gone(agent)
