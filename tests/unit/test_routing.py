"""Routing without sockets: stanzas in, stanzas out, rows in the (fake) stores."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any, cast
from xml.etree import ElementTree as ET

import pytest
import pytest_asyncio

from component.config import LimitsSettings
from component.directory import Directory
from component.errors import NotConnected
from component.routing import router as router_module
from component.routing.outbox import Outbox
from component.routing.router import MessageRouter
from storage.errors import NotFound
from storage.models import Party
from tests.unit.fakes import (
    FakeAdmission,
    FakeArchive,
    FakeConversations,
    FakeDirectoryStore,
    FakeLimits,
    FakePresence,
    message_router,
)

pytestmark = pytest.mark.asyncio

NS = "jabber:component:accept"
DOMAIN = "biz.localhost"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


@dataclasses.dataclass
class Env:
    router: MessageRouter
    store: FakeDirectoryStore
    directory: Directory
    conversations: FakeConversations
    archive: FakeArchive
    presence: FakePresence
    limits: FakeLimits
    written: list[str]
    connected: bool = True

    def submit(self, xml: str) -> None:
        self.router.submit(ET.fromstring(xml.replace("<message ", f'<message xmlns="{NS}" ', 1)))

    async def send(self, xml: str) -> list[ET.Element]:
        """Submit one stanza, wait for the router, return what it wrote."""
        self.submit(xml)
        return await self.output()

    async def output(self) -> list[ET.Element]:
        await asyncio.sleep(0)
        await self.router.drain()
        root = ET.fromstring(f'<root xmlns="{NS}">{"".join(self.written)}</root>')
        self.written.clear()
        return list(root)

    async def online(self, *jids: str) -> None:
        for jid in jids:
            await self.presence.update(jid, "desk", "available")


@contextlib.asynccontextmanager
async def routing_env() -> AsyncIterator[Env]:
    """A running router on fake stores, Pizza (Mario, Luigi) and Bikes (Bob)."""
    store = FakeDirectoryStore()
    store.add("pizza", "Pizza Napoli", ["mario@localhost", "luigi@localhost"])
    store.add("bikes", "Bike Shop", ["bob@localhost"])
    directory = Directory(store)
    await directory.reload(None)
    written: list[str] = []
    holder: dict[str, Env] = {}

    def write(data: str) -> None:
        if not holder["env"].connected:
            raise NotConnected()
        written.append(data)

    conversations = FakeConversations()
    archive = FakeArchive(conversations)
    presence, limits = FakePresence(), FakeLimits()
    router = message_router(
        directory,
        Outbox(write),
        domain=DOMAIN,
        conversations=conversations,
        archive=archive,
        presence=presence,
        limits=limits,
        limit_settings=LimitsSettings(max_body_chars=100, customer_rate=5, customer_rate_window=60),
    )
    env = Env(router, store, directory, conversations, archive, presence, limits, written)
    holder["env"] = env
    task = asyncio.create_task(router.run())
    try:
        yield env
    finally:
        task.cancel()


@pytest_asyncio.fixture
async def env() -> AsyncIterator[Env]:
    async with routing_env() as running:
        yield running


def chat(frm: str, to: str, body: str | None, mid: str = "m1", extra: str = "") -> str:
    body_el = f"<body>{body}</body>" if body is not None else ""
    return f'<message from="{frm}" to="{to}" id="{mid}" type="chat">{body_el}{extra}</message>'


RECEIPT_REQ = '<request xmlns="urn:xmpp:receipts"/>'


def error_condition(stanza: ET.Element) -> tuple[str | None, str | None]:
    err = stanza.find(f"{{{NS}}}error")
    assert err is not None, ET.tostring(stanza)
    cond = next(
        c.tag.split("}")[1]
        for c in err
        if c.tag.startswith(f"{{{STANZAS}}}") and not c.tag.endswith("text")
    )
    return err.get("type"), cond


def body(stanza: ET.Element) -> str | None:
    el = stanza.find(f"{{{NS}}}body")
    return None if el is None else el.text


async def test_unknown_company_is_item_not_found(env: Env) -> None:
    [reply] = await env.send(chat("alice@localhost/phone", "nope@biz.localhost", "hi"))
    assert reply.get("type") == "error"
    assert reply.get("to") == "alice@localhost/phone"
    assert error_condition(reply) == ("cancel", "item-not-found")
    assert env.archive.rows == []


async def test_customer_message_reaches_every_online_agent_from_an_opaque_address(env: Env) -> None:
    await env.online("mario@localhost", "luigi@localhost")
    out = await env.send(
        chat("alice@localhost/phone", "pizza@biz.localhost", "Do you deliver?", extra=RECEIPT_REQ)
    )
    to_agents = [s for s in out if s.get("to") in ("mario@localhost", "luigi@localhost")]
    receipts = [s for s in out if s.get("to") == "alice@localhost/phone"]
    assert {s.get("to") for s in to_agents} == {"mario@localhost", "luigi@localhost"}
    conv_jid = to_agents[0].get("from")
    assert conv_jid and conv_jid.startswith("pizza+") and conv_jid.endswith("@biz.localhost")
    assert "alice" not in conv_jid
    for s in to_agents:
        assert s.get("from") == conv_jid
        assert body(s) == "Do you deliver?"
        sid = s.find("{urn:xmpp:sid:0}stanza-id")
        assert sid is not None and sid.get("by") == conv_jid
        assert s.find("{http://jabber.org/protocol/nick}nick") is not None
        assert "alice" not in ET.tostring(s, encoding="unicode")
    [receipt] = receipts
    assert receipt.get("from") == "pizza@biz.localhost"
    received = receipt.find("{urn:xmpp:receipts}received")
    assert received is not None and received.get("id") == "m1"
    [(_, row)] = env.archive.rows
    assert row.body == "Do you deliver?" and row.author is Party.CUSTOMER and not row.pending
    assert row.stanza_id == to_agents[0].find("{urn:xmpp:sid:0}stanza-id").get("id")  # type: ignore[union-attr]


async def test_conversation_address_is_stable_per_customer_and_distinct_between_customers(
    env: Env,
) -> None:
    await env.online("mario@localhost")
    a1 = await env.send(chat("alice@localhost/a", "pizza@biz.localhost", "one", "1"))
    a2 = await env.send(chat("alice@localhost/b", "pizza@biz.localhost", "two", "2"))
    b1 = await env.send(chat("bruno@localhost/a", "pizza@biz.localhost", "three", "3"))
    assert a1[0].get("from") == a2[0].get("from") != b1[0].get("from")


async def test_no_agent_online_keeps_message_pending_and_still_acknowledges(env: Env) -> None:
    out = await env.send(
        chat("alice@localhost/phone", "pizza@biz.localhost", "anyone?", extra=RECEIPT_REQ)
    )
    assert [s.get("to") for s in out] == ["alice@localhost/phone"]
    assert out[0].find("{urn:xmpp:receipts}received") is not None
    [pending] = env.archive.pending()
    assert pending.body == "anyone?"


async def test_agent_reply_reaches_customer_from_company_address(env: Env) -> None:
    await env.online("mario@localhost")
    [to_agent] = await env.send(chat("alice@localhost/phone", "pizza@biz.localhost", "price?"))
    conv_jid = to_agent.get("from")
    out = await env.send(
        chat("mario@localhost/desk", conv_jid or "", "12 EUR", "r1", extra=RECEIPT_REQ)
    )
    to_customer = [s for s in out if s.get("to") == "alice@localhost"]
    [reply] = to_customer
    assert reply.get("from") == "pizza@biz.localhost"
    assert body(reply) == "12 EUR"
    assert reply.get("id") == "r1"
    sid = reply.find("{urn:xmpp:sid:0}stanza-id")
    assert sid is not None and sid.get("by") == "pizza@biz.localhost"
    nick = reply.find("{http://jabber.org/protocol/nick}nick")
    assert nick is not None and nick.text == "Pizza Napoli"
    [receipt] = [s for s in out if s.get("to") == "mario@localhost/desk"]
    assert receipt.get("from") == conv_jid
    assert [m.author for _, m in env.archive.rows] == [Party.CUSTOMER, Party.COMPANY]
    assert env.archive.rows[1][1].sender_jid == "mario@localhost"


async def test_only_agents_of_the_company_may_write_to_a_conversation(env: Env) -> None:
    await env.online("mario@localhost")
    [to_agent] = await env.send(chat("alice@localhost/phone", "pizza@biz.localhost", "hello"))
    conv_jid = to_agent.get("from") or ""
    for intruder in ("alice@localhost/phone", "bob@localhost/desk", "eve@localhost/x"):
        [err] = await env.send(chat(intruder, conv_jid, "let me in"))
        assert error_condition(err) == ("auth", "forbidden")
    assert len(env.archive.rows) == 1


async def test_unknown_conversation_token_is_item_not_found_for_agents(env: Env) -> None:
    [err] = await env.send(chat("mario@localhost/desk", "pizza+abcdefghij@biz.localhost", "hi"))
    assert error_condition(err) == ("cancel", "item-not-found")
    [err] = await env.send(chat("mario@localhost/desk", "pizza+NOT-A-TOKEN@biz.localhost", "hi"))
    assert error_condition(err) == ("cancel", "item-not-found")


async def test_body_too_long_is_policy_violation(env: Env) -> None:
    [err] = await env.send(chat("alice@localhost/phone", "pizza@biz.localhost", "x" * 101))
    assert error_condition(err) == ("modify", "policy-violation")
    assert env.archive.rows == []


async def test_rate_limit_is_resource_constraint_wait(env: Env) -> None:
    conditions = []
    for n in range(7):
        out = await env.send(
            chat("alice@localhost/phone", "pizza@biz.localhost", f"m{n}", f"id{n}")
        )
        conditions.append(
            error_condition(out[0]) if out and out[0].get("type") == "error" else None
        )
    assert conditions[:5] == [None] * 5
    assert conditions[5:] == [("wait", "resource-constraint")] * 2
    assert len(env.archive.rows) == 5


async def test_retransmission_is_archived_and_delivered_once_but_acknowledged_each_time(
    env: Env,
) -> None:
    await env.online("mario@localhost")
    origin = '<origin-id xmlns="urn:xmpp:sid:0" id="o-1"/>'
    first = await env.send(
        chat("alice@localhost/phone", "pizza@biz.localhost", "once", "a", origin + RECEIPT_REQ)
    )
    again = await env.send(
        chat("alice@localhost/phone", "pizza@biz.localhost", "once", "b", origin + RECEIPT_REQ)
    )
    assert sorted(s.get("to") or "" for s in first) == ["alice@localhost/phone", "mario@localhost"]
    assert [s.get("to") for s in again] == ["alice@localhost/phone"]
    assert len(env.archive.rows) == 1
    # Without origin-id, the same id from the same sender is the same message.
    await env.send(chat("alice@localhost/phone", "pizza@biz.localhost", "x", "same"))
    dup = await env.send(chat("alice@localhost/phone", "pizza@biz.localhost", "x", "same"))
    assert dup == [] and len(env.archive.rows) == 2


async def test_chat_states_pass_both_ways_and_are_not_archived(env: Env) -> None:
    await env.online("mario@localhost", "luigi@localhost")
    [to_agent, _] = await env.send(chat("alice@localhost/phone", "pizza@biz.localhost", "hi"))
    conv_jid = to_agent.get("from") or ""
    composing = '<composing xmlns="http://jabber.org/protocol/chatstates"/>'
    out = await env.send(
        chat("alice@localhost/phone", "pizza@biz.localhost", None, "c1", composing)
    )
    assert {s.get("to") for s in out} == {"mario@localhost", "luigi@localhost"}
    assert all(s.find("{http://jabber.org/protocol/chatstates}composing") is not None for s in out)
    assert all(body(s) is None for s in out)
    [back] = await env.send(chat("mario@localhost/desk", conv_jid, None, "c2", composing))
    assert back.get("from") == "pizza@biz.localhost" and back.get("to") == "alice@localhost"
    assert len(env.archive.rows) == 1
    # An agent closing his window (or logging out) is not the company leaving.
    gone = '<gone xmlns="http://jabber.org/protocol/chatstates"/>'
    assert await env.send(chat("mario@localhost/desk", conv_jid, None, "c3", gone)) == []
    [reply, colleague] = await env.send(chat("mario@localhost/desk", conv_jid, "bye", "c4", gone))
    assert body(reply) == "bye" and body(colleague) == "mario: bye"
    assert reply.find("{http://jabber.org/protocol/chatstates}gone") is None
    # A customer's "gone" still reaches the agents.
    out = await env.send(chat("alice@localhost/phone", "pizza@biz.localhost", None, "c5", gone))
    assert {s.get("to") for s in out} == {"mario@localhost", "luigi@localhost"}


async def test_agent_markers_reach_the_customer_once(env: Env) -> None:
    await env.online("mario@localhost", "luigi@localhost")
    [to_agent, _] = await env.send(
        chat("alice@localhost/phone", "pizza@biz.localhost", "hi", "m-7")
    )
    conv_jid = to_agent.get("from") or ""
    displayed = '<displayed xmlns="urn:xmpp:chat-markers:0" id="m-7"/>'
    [fwd] = await env.send(chat("mario@localhost/desk", conv_jid, None, "d1", displayed))
    assert fwd.get("from") == "pizza@biz.localhost"
    marker = fwd.find("{urn:xmpp:chat-markers:0}displayed")
    assert marker is not None and marker.get("id") == "m-7"
    assert await env.send(chat("luigi@localhost/desk", conv_jid, None, "d2", displayed)) == []
    received = '<received xmlns="urn:xmpp:receipts" id="m-7"/>'
    [rcpt] = await env.send(chat("luigi@localhost/desk", conv_jid, None, "d3", received))
    assert rcpt.find("{urn:xmpp:receipts}received") is not None


async def test_storage_outage_answers_wait_and_acknowledges_nothing(env: Env) -> None:
    await env.online("mario@localhost")
    env.archive.switch.down = True
    out = await env.send(
        chat("alice@localhost/phone", "pizza@biz.localhost", "hello", extra=RECEIPT_REQ)
    )
    [err] = out
    assert err.get("type") == "error"
    assert error_condition(err) == ("wait", "internal-server-error")
    env.archive.switch.down = False
    out = await env.send(
        chat("alice@localhost/phone", "pizza@biz.localhost", "hello", extra=RECEIPT_REQ)
    )
    assert sorted(s.get("to") or "" for s in out) == ["alice@localhost/phone", "mario@localhost"]


async def test_redis_outage_answers_wait(env: Env) -> None:
    env.presence.switch.down = True
    [err] = await env.send(chat("alice@localhost/phone", "pizza@biz.localhost", "hello"))
    assert error_condition(err) == ("wait", "internal-server-error")
    assert env.archive.rows == []


async def test_malformed_and_unsupported_messages_get_errors(env: Env) -> None:
    head = '<message from="alice@localhost/p" to="pizza@biz.localhost"'
    [err] = await env.send(f'{head} id="g" type="groupchat"><body>x</body></message>')
    assert error_condition(err) == ("modify", "bad-request")
    [err] = await env.send(
        chat(
            "alice@localhost/p",
            "pizza@biz.localhost",
            None,
            "u",
            '<x xmlns="urn:example:unknown"/>',
        )
    )
    assert error_condition(err) == ("cancel", "feature-not-implemented")
    omemo = '<encrypted xmlns="eu.siacs.conversations.axolotl"><header sid="1"/></encrypted>'
    [err] = await env.send(
        chat("alice@localhost/p", "pizza@biz.localhost", "I sent you an OMEMO message", "e", omemo)
    )
    assert error_condition(err) == ("modify", "not-acceptable")
    # Errors and headlines are never answered.
    assert await env.send(f'{head} type="error"><error type="cancel"/></message>') == []
    assert await env.send(f'{head} type="headline"><body>x</body></message>') == []
    assert env.archive.rows == []


async def test_chat_states_to_the_service_itself_are_ignored(env: Env) -> None:
    composing = '<composing xmlns="http://jabber.org/protocol/chatstates"/>'
    assert await env.send(chat("alice@localhost/p", "biz.localhost", None, "c", composing)) == []


async def test_message_to_the_service_itself_gets_help(env: Env) -> None:
    [reply] = await env.send(chat("alice@localhost/p", "biz.localhost", "hello?"))
    assert reply.get("from") == "biz.localhost"
    assert "pizza" not in (body(reply) or "") and "@biz.localhost" in (body(reply) or "")


async def test_a_burst_is_archived_in_few_transactions_and_delivered_in_order(env: Env) -> None:
    await env.online("mario@localhost")
    env.router.limit_settings = LimitsSettings(customer_rate=1000)
    for n in range(50):
        env.submit(chat(f"c{n % 5}@localhost/p", "pizza@biz.localhost", f"msg {n}", f"id{n}"))
    out = await env.output()
    assert [body(s) for s in out] == [f"msg {n}" for n in range(50)]
    assert sum(env.archive.batches) == 50
    assert len(env.archive.batches) <= 2


async def test_a_batch_asks_redis_once(env: Env) -> None:
    """Rate limits, presence and marker dedup of a whole batch: one admission."""
    await env.online("mario@localhost")
    [to_agent] = await env.send(chat("alice@localhost/p", "pizza@biz.localhost", "hi", "m-1"))
    conv_jid = to_agent.get("from") or ""
    admission = cast(FakeAdmission, env.router.admission)
    before = admission.calls
    displayed = '<displayed xmlns="urn:xmpp:chat-markers:0" id="m-1"/>'
    composing = '<composing xmlns="http://jabber.org/protocol/chatstates"/>'
    env.submit(chat("alice@localhost/p", "pizza@biz.localhost", "two", "m-2"))
    env.submit(chat("bruno@localhost/p", "pizza@biz.localhost", None, "c-1", composing))
    env.submit(chat("mario@localhost/desk", conv_jid, None, "d-1", displayed))
    env.submit(chat("mario@localhost/desk", conv_jid, None, "d-2", displayed))
    env.submit(chat("bruno@localhost/p", "bikes@biz.localhost", "three", "m-3"))
    out = await env.output()
    assert admission.calls == before + 1
    assert len(env.archive.batches) == 2  # "hi", then the whole burst
    # Each answered as if asked alone: the marker forwarded once, the
    # message to Bikes (nobody online) pending.
    assert [s.get("to") for s in out] == ["mario@localhost", "alice@localhost"]
    assert env.archive.rows[-1][1].pending and not env.archive.rows[-2][1].pending


async def test_messages_before_the_directory_is_read_wait_for_it(env: Env) -> None:
    """At start the stream is up a moment before the directory is read: what
    arrives meanwhile waits for it, in order, rather than being refused."""
    await env.online("mario@localhost")
    env.directory.loaded.clear()
    env.submit(chat("alice@localhost/p", "pizza@biz.localhost", "first", "m1"))
    env.submit(chat("alice@localhost/p", "pizza@biz.localhost", "second", "m2"))
    await asyncio.sleep(0.05)
    assert env.written == []  # waiting, not refused
    env.directory.loaded.set()
    assert [body(s) for s in await env.output()] == ["first", "second"]


async def test_a_directory_not_read_in_time_answers_wait(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(router_module, "STARTUP_WAIT_S", 0.05)
    env.directory.loaded.clear()
    [err] = await env.send(chat("alice@localhost/p", "pizza@biz.localhost", "hi"))
    assert error_condition(err) == ("wait", "internal-server-error")


async def test_delivery_is_confirmed_once_written(env: Env) -> None:
    await env.online("mario@localhost")
    await env.send(chat("alice@localhost/p", "pizza@biz.localhost", "hello"))
    assert env.archive.deliveries == {}
    # Pending messages are not in flight: nothing to confirm.
    await env.send(chat("bruno@localhost/p", "bikes@biz.localhost", "anyone?"))
    assert env.archive.deliveries == {} and len(env.archive.pending()) == 1


async def test_messages_archived_but_not_written_are_swept_to_their_recipients(env: Env) -> None:
    await env.online("mario@localhost")
    [to_agent] = await env.send(chat("alice@localhost/p", "pizza@biz.localhost", "first"))
    conv_jid = to_agent.get("from") or ""
    env.connected = False
    assert await env.send(chat("alice@localhost/p", "pizza@biz.localhost", "lost?", "m2")) == []
    assert await env.send(chat("mario@localhost/desk", conv_jid, "reply lost?", "r2")) == []
    assert len(env.archive.deliveries) == 2  # archived, never confirmed
    env.connected = True
    assert await env.router.deliveries.sweep(15) == 2
    out = await env.output()
    [again] = [s for s in out if s.get("to") == "mario@localhost"]
    assert body(again) == "lost?" and again.get("id") == "m2"
    assert again.find("{urn:xmpp:delay}delay") is not None
    [reply] = [s for s in out if s.get("to") == "alice@localhost"]
    assert body(reply) == "reply lost?" and reply.get("from") == "pizza@biz.localhost"
    assert env.archive.deliveries == {}


async def test_swept_customer_message_without_agents_goes_back_to_pending(env: Env) -> None:
    await env.online("mario@localhost")
    env.connected = False
    await env.send(chat("alice@localhost/p", "pizza@biz.localhost", "hello?"))
    env.connected = True
    await env.presence.update("mario@localhost", "desk", None)
    assert await env.router.deliveries.sweep(15) == 0
    assert [m.body for m in env.archive.pending()] == ["hello?"]
    assert env.archive.deliveries == {}


async def test_special_characters_survive_the_round_trip(env: Env) -> None:
    await env.online("mario@localhost")
    text = "a &lt; b &amp;&amp; c &gt; d \"quoted\" 'single' ünïcødé 🍕"
    [to_agent] = await env.send(chat("alice@localhost/p", "pizza@biz.localhost", text))
    assert body(to_agent) == "a < b && c > d \"quoted\" 'single' ünïcødé 🍕"


@pytest.mark.parametrize("nick", ["Alice", "A <b> & c"])
async def test_customer_nickname_is_shown_to_agents(env: Env, nick: str) -> None:
    await env.online("mario@localhost")
    esc = nick.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    nick_el = f'<nick xmlns="http://jabber.org/protocol/nick">{esc}</nick>'
    [to_agent] = await env.send(
        chat("alice@localhost/p", "pizza@biz.localhost", "hi", extra=nick_el)
    )
    el = to_agent.find("{http://jabber.org/protocol/nick}nick")
    assert el is not None and el.text == nick


async def test_a_conversation_deleted_under_the_batch_is_looked_up_again(env: Env) -> None:
    await env.online("mario@localhost")
    await env.send(chat("alice@localhost/phone", "pizza@biz.localhost", "first", "m1"))
    real = env.archive.append_batch
    calls = 0

    async def vanished_once(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            # The row went away (customer forgotten) while the cache still had it.
            env.conversations.rows.clear()
            raise NotFound("conversation does not exist")
        return await real(*args, **kwargs)

    env.archive.append_batch = vanished_once  # type: ignore[method-assign]
    out = await env.send(chat("alice@localhost/phone", "pizza@biz.localhost", "again", "m2"))
    assert [body(s) for s in out] == ["again"]
    assert calls == 2 and len(env.conversations.rows) == 1  # opened anew


async def test_an_agent_writing_to_his_own_company_is_not_its_customer(env: Env) -> None:
    """The company sits in its agents' rosters for its presence: a message to it
    from one of them opens no conversation and reaches nobody."""
    [error] = await env.send(chat("mario@localhost/desk", "pizza@biz.localhost", "hello?"))
    assert error_condition(error) == ("cancel", "not-allowed")
    assert "Pizza Napoli" in (error.findtext(f"{{{NS}}}error/{{{STANZAS}}}text") or "")
    assert env.archive.rows == [] and env.conversations.rows == {}
    # To another company, the same account is a customer like any other.
    out = await env.send(chat("mario@localhost/desk", "bikes@biz.localhost", "a bike?"))
    assert all(el.get("type") != "error" for el in out)


async def test_an_answer_reaches_the_online_colleagues_marked_with_its_author(env: Env) -> None:
    """The shared inbox: Luigi sees in the conversation's chat what Mario answered."""
    await env.online("mario@localhost", "luigi@localhost")
    [to_agent, _] = await env.send(chat("alice@localhost/phone", "pizza@biz.localhost", "hi"))
    conv_jid = to_agent.get("from") or ""
    out = await env.send(chat("mario@localhost/desk", conv_jid, "It is 12 euros", "r1"))
    by_to = {s.get("to"): s for s in out}
    assert set(by_to) == {"alice@localhost", "luigi@localhost"}
    copy = by_to["luigi@localhost"]
    assert copy.get("from") == conv_jid and body(copy) == "mario: It is 12 euros"
    # The same id as Luigi's copy in his own archive, so his client sees one message.
    [(_, row)] = [r for r in env.archive.rows if r[1].body == "It is 12 euros"]
    assert copy.get("id") == row.stanza_id


async def test_an_answer_written_by_the_component_is_echoed_to_its_sender(env: Env) -> None:
    """A canned reply or an offer (post_as) never showed in the sender's own
    client: he gets it as his colleagues do."""
    await env.online("mario@localhost", "luigi@localhost")
    [to_agent, _] = await env.send(chat("alice@localhost/phone", "pizza@biz.localhost", "hi"))
    conv_jid = to_agent.get("from") or ""
    await env.router.post_as("mario@localhost", conv_jid, body="Canned: we open at 9")
    out = await env.output()
    copies = {s.get("to"): body(s) for s in out if s.get("from") == conv_jid}
    assert copies == {
        "mario@localhost": "mario: Canned: we open at 9",
        "luigi@localhost": "mario: Canned: we open at 9",
    }


async def test_each_message_is_copied_to_the_own_archives_of_customer_and_agents(
    env: Env,
) -> None:
    """Rows for users' own archives (where standard clients look for history),
    as each of them saw the message live."""
    await env.online("mario@localhost")
    [to_mario] = await env.send(chat("alice@localhost/phone", "pizza@biz.localhost", "hi", "c-1"))
    conv_jid = to_mario.get("from") or ""
    await env.send(chat("mario@localhost/desk", conv_jid, "hello", "a-1"))
    [(_, question), (_, answer)] = env.archive.rows
    company = "pizza@biz.localhost"
    assert {(c.owner, c.peer, c.outgoing, c.message_id, c.body) for c in question.copies} == {
        ("alice@localhost", company, True, "c-1", "hi"),
        ("mario@localhost", conv_jid, False, "c-1", "hi"),
        ("luigi@localhost", conv_jid, False, "c-1", "hi"),  # offline: history all the same
    }
    assert {(c.owner, c.peer, c.outgoing, c.message_id, c.body) for c in answer.copies} == {
        ("alice@localhost", company, False, "a-1", "hello"),
        ("mario@localhost", conv_jid, True, "a-1", "hello"),
        ("luigi@localhost", conv_jid, False, answer.stanza_id, "mario: hello"),
    }
