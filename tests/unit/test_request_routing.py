"""Requests to several companies without sockets: the service's rules and its routing hooks."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from typing import NoReturn
from xml.etree import ElementTree as ET

import pytest
import pytest_asyncio

from component.config import RequestSettings
from component.directory import Directory
from component.errors import (
    BodyTooLong,
    NoRecipient,
    RateLimited,
    TooManyRecipients,
    UnknownAddress,
)
from component.features.requests.hooks import RequestHooks
from component.features.requests.service import RequestService
from component.routing.outbox import Outbox
from component.search import DirectorySearch
from extensions.request import payloads
from extensions.request.create import Create, Search
from extensions.request.offers import offer_text, parse_offer
from extensions.request.stanza import FORM_OFFER
from extensions.request.stanza import NS as REQ_NS
from storage.models import Company, TargetStatus
from tests.unit.fakes import (
    FakeArchive,
    FakeConversations,
    FakeDirectorySearchStore,
    FakeDirectoryStore,
    FakeLimits,
    message_router,
)
from tests.unit.fakes_services import FakeRequestStore
from tests.unit.test_routing import NS, body, chat, error_condition

pytestmark = pytest.mark.asyncio

DOMAIN = "biz.localhost"
NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)  # a Monday
CUSTOMER = "alice@localhost"


@dataclasses.dataclass
class Env:
    service: RequestService
    store: FakeRequestStore
    directory_store: FakeDirectoryStore
    archive: FakeArchive
    conversations: FakeConversations
    limits: FakeLimits
    written: list[str]

    async def send(self, xml: str) -> list[ET.Element]:
        self.service.router.submit(
            ET.fromstring(xml.replace("<message ", f'<message xmlns="{NS}" ', 1))
        )
        await asyncio.sleep(0)
        await self.service.router.drain()
        root = ET.fromstring(f'<root xmlns="{NS}">{"".join(self.written)}</root>')
        self.written.clear()
        return list(root)


def company(store: FakeDirectoryStore, slug: str, **fields: object) -> Company:
    c = store.add(slug, slug.title(), [f"agent@{slug}.example"])
    store.companies[slug] = dataclasses.replace(c, **fields)  # type: ignore[arg-type]
    return store.companies[slug]


@pytest_asyncio.fixture
async def env() -> AsyncIterator[Env]:
    store = FakeDirectoryStore()
    company(store, "north", category="Tyres", city="Tomsk", hours="Mo-Fr 09:00-18:00")
    company(store, "south", category="Tyres", city="Tomsk", hours="Sa-Su 10:00-14:00")
    company(store, "east", category="tyres", city="Omsk")
    company(store, "quiet", category="Tyres", city="Tomsk", accepts_requests=False)
    directory = Directory(store)
    await directory.reload(None)
    written: list[str] = []
    conversations = FakeConversations()
    archive = FakeArchive(conversations)
    outbox = Outbox(written.append)
    requests, limits = FakeRequestStore(conversations, archive), FakeLimits()
    router = message_router(
        directory,
        outbox,
        domain=DOMAIN,
        archive=archive,
        conversations=conversations,
        hooks=[RequestHooks(domain=DOMAIN, directory=directory, store=requests)],
    )
    service = RequestService(
        domain=DOMAIN,
        directory=directory,
        search=DirectorySearch(FakeDirectorySearchStore(store.companies), directory, lambda: NOW),
        store=requests,
        limits=limits,
        router=router,
        outbox=outbox,
        settings=RequestSettings(max_companies=4),
        max_body_chars=50,
        now=lambda: NOW,
    )
    task = asyncio.create_task(router.run())
    yield Env(service, requests, store, archive, conversations, limits, written)
    task.cancel()


def ask(*jids: str, search: Search | None = None, include_closed: bool = False) -> Create:
    return Create("Tyres", "Price for four?", jids, search, None, include_closed)


def jid(slug: str) -> str:
    return f"{slug}@{DOMAIN}"


async def test_refusals_per_company(env: Env) -> None:
    view = await env.service.create(
        CUSTOMER, ask(jid("north"), jid("south"), jid("quiet"), jid("nobody+abc"))
    )
    statuses = {t.jid: (t.status, t.reason, t.opens) for t in view.targets}
    assert statuses == {
        jid("north"): ("sent", None, None),
        jid("south"): ("refused", "closed", "2026-12-05T10:00:00+00:00"),
        jid("quiet"): ("refused", "opted-out", None),
        jid("nobody+abc"): ("refused", "unknown", None),
    }
    [new] = env.store.created
    assert new.company_ids == (env.directory_store.companies["north"].id,)
    assert "Price for four?" in new.message_body and "south" not in new.message_payload


async def test_include_closed_and_errors(env: Env) -> None:
    view = await env.service.create(CUSTOMER, ask(jid("south"), include_closed=True))
    assert [t.status for t in view.targets] == ["sent"]
    with pytest.raises(TooManyRecipients):
        await env.service.create(CUSTOMER, ask(*(jid(f"c{n}") for n in range(5))))
    with pytest.raises(UnknownAddress):
        await env.service.create(CUSTOMER, ask(jid("nobody"), "north@other.example"))
    with pytest.raises(NoRecipient) as caught:
        await env.service.create(CUSTOMER, ask(jid("south"), jid("quiet")))
    assert "opens Sat 10:00" in str(caught.value)
    long = dataclasses.replace(ask(jid("north")), body="x" * 51)
    with pytest.raises(BodyTooLong, match="longer than 50"):
        await env.service.create(CUSTOMER, long)


async def test_customer_rate_and_company_intake(env: Env) -> None:
    env.limits.allow = 1
    await env.service.create(CUSTOMER, ask(jid("north")))
    with pytest.raises(RateLimited):
        await env.service.create(CUSTOMER, ask(jid("north")))
    with pytest.raises(NoRecipient, match="too many requests"):
        await env.service.create("bob@localhost", ask(jid("north")))
    view = await env.service.create("carol@localhost", ask(jid("north"), jid("east")))
    assert {t.jid: t.reason for t in view.targets} == {
        jid("east"): None,
        jid("north"): "over-limit",
    }


async def test_search_open_first_case_insensitive(env: Env) -> None:
    found = await env.service.search(Search("TYRES", None, None, None), 10)
    # north is open on Monday noon; south (weekends) after; quiet opted out.
    assert [c.slug for c in found] == ["east", "north", "south"]
    found = await env.service.search(Search("tyres", "tomsk", "nor", None), 10)
    assert [c.slug for c in found] == ["north"]
    view = await env.service.create(CUSTOMER, ask(search=Search("tyres", "Tomsk", None, 1)))
    assert [(t.jid, t.status) for t in view.targets] == [(jid("north"), "sent")]


async def test_agent_reply_carries_the_request_and_moves_its_status(env: Env) -> None:
    await env.send(chat("alice@localhost/phone", jid("north"), "hello"))  # opens it
    conv = next(iter(env.conversations.rows.values()))
    env.store.open_request(
        "rabcdefghijklmnopqrst", conv.company_id, conv.id, customer_jid=CUSTOMER, now=NOW
    )
    vjid = f"north+{conv.token}@{DOMAIN}"
    out = await env.send(chat("agent@north.example/desk", vjid, "320 EUR", mid="a1"))
    [to_customer, status] = out
    assert to_customer.get("to") == CUSTOMER and body(to_customer) == "320 EUR"
    assert to_customer.findtext(f"{{{NS}}}thread") == "rabcdefghijklmnopqrst"
    ref = to_customer.find(f"{{{REQ_NS}}}reply")
    assert ref is not None and ref.get("request") == "rabcdefghijklmnopqrst"
    assert status.get("type") == "headline" and status.get("from") == DOMAIN
    st = status.find(f"{{{REQ_NS}}}status/{{{REQ_NS}}}target")
    assert st is not None and (st.get("jid"), st.get("status")) == (jid("north"), "answered")
    archived = env.archive.rows[-1][1]
    assert archived.thread == "rabcdefghijklmnopqrst" and archived.payload is not None

    # An offer without a body: the body is written from it; no new status (already answered).
    offer = (
        f'<offer xmlns="{REQ_NS}"><x xmlns="jabber:x:data" type="submit">'
        f'<field var="FORM_TYPE" type="hidden"><value>{FORM_OFFER}</value></field>'
        '<field var="price"><value>300</value></field>'
        '<field var="currency"><value>EUR</value></field>'
        '<field var="availability"><value>to-order</value></field></x></offer>'
    )
    [offered] = await env.send(chat("agent@north.example/desk", vjid, None, "a2", offer))
    assert body(offered) == offer_text(parse_offer(ET.fromstring(offer)))
    assert offered.find(f"{{{REQ_NS}}}offer") is not None
    assert env.store.updates[-1].offer is not None

    # A malformed offer is refused and archives nothing.
    count = len(env.archive.rows)
    [error] = await env.send(
        chat("agent@north.example/desk", vjid, "x", "a3", offer.replace("EUR", "euros"))
    )
    assert error_condition(error) == ("modify", "bad-request")
    assert len(env.archive.rows) == count

    # A displayed marker now: forwarded, but no status (answered is past seen).
    marker = '<displayed xmlns="urn:xmpp:chat-markers:0" id="m1"/>'
    [forwarded] = await env.send(chat("agent@north.example/desk", vjid, None, "a4", marker))
    assert forwarded.get("type") == "chat" and forwarded.get("to") == CUSTOMER


async def test_seen_and_plain_conversations(env: Env) -> None:
    await env.send(chat("alice@localhost/phone", jid("north"), "hello"))
    await env.send(chat("bob@localhost/phone", jid("north"), "hi there"))
    alice, bob = list(env.conversations.rows.values())
    env.store.open_request(
        "rabcdefghijklmnopqrst", alice.company_id, alice.id, customer_jid=CUSTOMER, now=NOW
    )
    marker = '<displayed xmlns="urn:xmpp:chat-markers:0" id="m1"/>'
    out = await env.send(
        chat("agent@north.example/desk", f"north+{alice.token}@{DOMAIN}", None, "d1", marker)
    )
    statuses = [
        (t.get("jid"), t.get("status"))
        for el in out
        for t in el.iterfind(f"{{{REQ_NS}}}status/{{{REQ_NS}}}target")
    ]
    assert statuses == [(jid("north"), "seen")]
    # Bob's conversation has no open request: a plain reply, no thread, no status.
    [reply] = await env.send(
        chat("agent@north.example/desk", f"north+{bob.token}@{DOMAIN}", "hi Bob", "r1")
    )
    assert reply.find(f"{{{NS}}}thread") is None and reply.find(f"{{{REQ_NS}}}reply") is None
    assert env.archive.rows[-1][1].thread is None


async def test_company_options_have_unique_labels() -> None:
    from component.features.requests.commands import _company_options

    def co(n: int, slug: str, name: str, city: str | None) -> Company:
        return Company(n, slug, name, None, "UTC", None, "tyres", city)

    options = _company_options(
        [co(1, "a", "Shop", "Tomsk"), co(2, "b", "Shop", "Tomsk"), co(3, "c", "Shop", None)],
        DOMAIN,
    )
    assert [(o.value, o.label) for o in options] == [
        ("a@biz.localhost", "Shop (tyres, Tomsk) <a>"),
        ("b@biz.localhost", "Shop (tyres, Tomsk) <b>"),
        ("c@biz.localhost", "Shop (tyres)"),
    ]


async def test_a_closed_company_left_out_by_the_limit_is_reported_not_dropped(env: Env) -> None:
    """Asked by search with room for one company, the open one takes it; the
    closed one that matched better is listed as not sent (closed), not left out."""
    company(env.directory_store, "able", category="Tyres", city="Tomsk", hours="Sa 10:00-14:00")
    view = await env.service.create(CUSTOMER, ask(search=Search("Tyres", "Tomsk", None, 1)))
    statuses = {t.jid: (t.status, t.reason) for t in view.targets}
    assert statuses == {jid("north"): ("sent", None), jid("able"): ("refused", "closed")}
    # Including closed companies, the limit counts them like the others.
    view = await env.service.create(
        "bob@localhost", ask(search=Search("Tyres", "Tomsk", None, 1), include_closed=True)
    )
    assert [t.status for t in view.targets] == ["sent"]


async def test_the_request_is_in_the_customers_own_archive(env: Env) -> None:
    """Like any message, a request's message is copied where standard clients
    look for history: the customer's own archive, with each company, under the
    id it is delivered with. (The agents here are accounts of another host,
    which has no archive of ours: they get none.)"""
    await env.service.create(CUSTOMER, ask(jid("north"), jid("east")))
    rows = [m for _, m in env.archive.rows]
    assert len(rows) == 2
    slugs = {c.id: slug for slug, c in env.directory_store.companies.items()}
    for message in rows:
        conv = next(c for c in env.conversations.rows.values() if c.id == message.conversation_id)
        slug = slugs[conv.company_id]
        assert [(c.owner, c.peer, c.outgoing, c.message_id) for c in message.copies] == [
            (CUSTOMER, jid(slug), True, message.stanza_id)
        ]


# -- an agent's batch: one round trip ---------------------------------------------------

OFFER = (
    f'<offer xmlns="{REQ_NS}"><x xmlns="jabber:x:data" type="submit">'
    f'<field var="FORM_TYPE" type="hidden"><value>{FORM_OFFER}</value></field>'
    '<field var="price"><value>300</value></field>'
    '<field var="currency"><value>EUR</value></field>'
    '<field var="availability"><value>to-order</value></field></x></offer>'
)


def no_round_trip(*args: object) -> NoReturn:
    raise AssertionError("RequestStore called on the message path")


async def send_together(env: Env, *xmls: str) -> list[ET.Element]:
    """Submit messages at once, so that they form one batch; what was written."""
    for xml in xmls:
        env.service.router.submit(
            ET.fromstring(xml.replace("<message ", f'<message xmlns="{NS}" ', 1))
        )
    await asyncio.sleep(0)
    await env.service.router.drain()
    root = ET.fromstring(f'<root xmlns="{NS}">{"".join(env.written)}</root>')
    env.written.clear()
    return list(root)


async def test_an_agents_batch_is_threaded_and_moves_statuses_in_its_archive_statement(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Threads, payloads (byte for byte those of extensions.request.payloads) and
    status moves of a batch of answers and markers all come with the batch's one
    archive statement: the request store is never called on the message path."""
    await env.send(chat("alice@localhost/phone", jid("north"), "hello"))
    await env.send(chat("bob@localhost/phone", jid("north"), "hi"))
    await env.send(chat("carol@localhost/phone", jid("north"), "hey"))
    alice, bob, carol = env.conversations.rows.values()
    north = alice.company_id
    first, second = "rabcdefghijklmnopqrst", "rbbbbbbbbbbbbbbbbbbbb"
    env.store.open_request(first, north, alice.id, customer_jid=CUSTOMER, now=NOW)
    env.store.open_request(second, north, bob.id, customer_jid="bob@localhost", now=NOW)
    monkeypatch.setattr(env.store, "open_in", no_round_trip)
    monkeypatch.setattr(env.store, "advance", no_round_trip)
    agent = "agent@north.example/desk"
    to_alice, to_bob, to_carol = (f"north+{c.token}@{DOMAIN}" for c in (alice, bob, carol))
    # A reason that looks like what stands for the request's id in the payload.
    decline = f'<decline xmlns="{REQ_NS}"><reason>{{public-id}} out</reason></decline>'
    marker = '<displayed xmlns="urn:xmpp:chat-markers:0" id="m1"/>'
    batches = len(env.archive.batches)

    out = await send_together(
        env,
        chat(agent, to_alice, "Let me check", "a1"),
        chat(agent, to_alice, None, "a2", OFFER),
        chat(agent, to_bob, None, "b1", marker),
        chat(agent, to_bob, None, "b2", decline),
        chat(agent, to_carol, "No request here", "c1"),
    )

    assert len(env.archive.batches) == batches + 1  # one batch, one statement
    archived = {m.client_id: m for _, m in env.archive.rows[-4:]}
    offer = parse_offer(ET.fromstring(OFFER))
    assert [(m.thread, m.payload) for m in archived.values()] == [
        (first, payloads.reply_payload(first)),
        (first, payloads.offer_payload(first, offer)),
        (second, payloads.decline_payload(second, "{public-id} out")),
        (None, None),
    ]
    chats = [s for s in out if s.get("type") == "chat" and body(s) is not None]
    threads = [(s.get("to"), s.findtext(f"{{{NS}}}thread")) for s in chats]
    assert threads == [
        (CUSTOMER, first),
        (CUSTOMER, first),
        ("bob@localhost", second),
        ("carol@localhost", None),
    ]
    headlines = [s for s in out if s.get("type") == "headline"]
    statuses = [
        (s.get("to"), t.get("status"))
        for s in headlines
        for t in s.iterfind(f"{{{REQ_NS}}}status/{{{REQ_NS}}}target")
    ]
    # One per request: bob's seen and declined in one batch report the last.
    assert statuses == [(CUSTOMER, "answered"), ("bob@localhost", "declined")]
    targets = {r.public_id: r.targets[0] for r in env.store.requests.values()}
    assert targets[first].offer is not None and targets[second].reason == "{public-id} out"

    # The offer again (a retransmission, the same id): a duplicate, nothing moves
    # and nothing goes to the customer.
    updates = len(env.store.updates)
    assert await send_together(env, chat(agent, to_alice, None, "a2", OFFER)) == []
    assert len(env.store.updates) == updates


async def test_an_outage_fails_an_agents_batch_as_a_whole(env: Env) -> None:
    """PostgreSQL down: the answer gets a wait error, no status moves, nothing is sent."""
    await env.send(chat("alice@localhost/phone", jid("north"), "hello"))
    [alice] = env.conversations.rows.values()
    pid = "rabcdefghijklmnopqrst"
    env.store.open_request(pid, alice.company_id, alice.id, customer_jid=CUSTOMER, now=NOW)
    env.archive.switch.down = True
    [error] = await env.send(
        chat("agent@north.example/desk", f"north+{alice.token}@{DOMAIN}", "320 EUR", "a1")
    )
    assert error_condition(error)[0] == "wait"
    assert env.store.updates == []
    assert env.store.requests[pid].targets[0].status is TargetStatus.SENT
