"""Faults and hostile input without sockets: one bad item, a crashing hook or task,
a store that lost its data, stanzas too deep or too large, nicknames, agents."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Sequence
from typing import cast
from xml.etree import ElementTree as ET

import pytest
import pytest_asyncio

from component.addressing import agent_jid
from component.app import YOUNG_GENERATION_THRESHOLD, App, settle_heap
from component.config import ComponentSettings
from component.directory import Directory
from component.errors import BadRequest, RateLimited
from component.features.notify.email import SmtpSender
from component.features.notify.preferences import MAX_PUSH_DEVICES, Preferences
from component.routing.hooks import RoutingHooks
from component.routing.items import Item
from component.routing.outbox import Outbox
from component.routing.presence import PresenceRouter
from component.routing.wire import MAX_NICK, clean_nick
from component.xmpp import ComponentStream, stanza_size, too_deep
from storage.models import ArchivedBatch, BatchExtras, BatchRead, NewMessage, PushSubscription
from storage.protocols import ContactStore
from tests.unit.fakes import FakeDirectoryStore, FakeLimits, FakePresence, message_router
from tests.unit.test_routing import (
    DOMAIN,
    RECEIPT_REQ,
    Env,
    body,
    chat,
    error_condition,
    routing_env,
)


@pytest_asyncio.fixture
async def env() -> AsyncIterator[Env]:
    async with routing_env() as running:
        yield running


ANNA, BORIS, CARLA = "anna@localhost/phone", "boris@localhost/pc", "carla@localhost/tab"
PIZZA = f"pizza@{DOMAIN}"


# -- one bad item never fails its neighbours ---------------------------------------


@pytest.mark.asyncio
async def test_a_message_the_database_refuses_fails_alone(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    await env.online("mario@localhost")
    append = env.archive.append_batch

    async def refusing(
        batch: Sequence[NewMessage],
        confirmed: Sequence[int] = (),
        extras: BatchExtras | None = None,
    ) -> ArchivedBatch:
        if any("poison" in m.body for m in batch):
            raise ValueError("invalid byte sequence for encoding UTF8: 0x00")  # a DataError
        return await append(batch, confirmed, extras)

    monkeypatch.setattr(env.archive, "append_batch", refusing)
    for sender, text in ((ANNA, "hello"), (BORIS, "poison"), (CARLA, "hi there")):
        env.submit(chat(sender, PIZZA, text, mid=f"m-{text[:2]}", extra=RECEIPT_REQ))
    out = await env.output()
    errors = [s for s in out if s.get("type") == "error"]
    assert [(s.get("to"), error_condition(s)) for s in errors] == [
        (BORIS, ("modify", "bad-request"))
    ]
    receipts = {s.get("to") for s in out if s.find("{urn:xmpp:receipts}received") is not None}
    assert receipts == {ANNA, CARLA}
    delivered = sorted(body(s) or "" for s in out if s.get("to") == "mario@localhost")
    assert delivered == ["hello", "hi there"]
    assert sorted(m.body for _, m in env.archive.rows) == ["hello", "hi there"]


class _Crashing(RoutingHooks):
    def __init__(self, where: str) -> None:
        self.where = where

    def alongside(
        self,
        batch: Sequence[Item],
        routed: Sequence[int],
        written: Sequence[int],
        extras: BatchExtras,
    ) -> None:
        if self.where == "before":
            raise RuntimeError("a bug in a feature")

    async def after_store(self, batch: Sequence[Item], read: BatchRead) -> list[str]:
        if self.where == "after":
            raise RuntimeError("a bug in a feature")
        return []


@pytest.mark.asyncio
async def test_a_crashing_hook_after_the_archive_does_not_fail_the_batch(env: Env) -> None:
    env.router.hooks = [_Crashing("after")]
    await env.online("mario@localhost")
    out = await env.send(chat(ANNA, PIZZA, "hello", extra=RECEIPT_REQ))
    assert [s.get("to") for s in out] == ["mario@localhost", ANNA]  # delivered, receipted
    assert not [s for s in out if s.get("type") == "error"]


@pytest.mark.asyncio
async def test_a_crashed_batch_answers_every_sender_and_the_loop_goes_on(env: Env) -> None:
    env.router.hooks = [_Crashing("before")]
    await env.online("mario@localhost")
    env.submit(chat(ANNA, PIZZA, "one", mid="a", extra=RECEIPT_REQ))
    env.submit(chat(BORIS, PIZZA, "two", mid="b", extra=RECEIPT_REQ))
    out = await env.output()
    assert sorted((s.get("to"), error_condition(s)) for s in out) == [
        (ANNA, ("wait", "internal-server-error")),
        (BORIS, ("wait", "internal-server-error")),
    ]
    env.router.hooks = []
    out = await env.send(chat(CARLA, PIZZA, "three", mid="c", extra=RECEIPT_REQ))
    assert {s.get("to") for s in out} == {"mario@localhost", CARLA}


# -- a crashed background task comes back ---------------------------------------------


@pytest.mark.asyncio
async def test_a_crashed_task_is_started_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("component.app.RESTART_MIN_DELAY_S", 0.01)
    runs = 0

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise RuntimeError("crash")

    await asyncio.wait_for(App._supervised("flaky", flaky), 5)
    assert runs == 3  # crashed twice, then returned: not started again


# -- presence lost from the store is learnt again ----------------------------------


@pytest.mark.asyncio
async def test_a_store_that_lost_its_data_makes_every_agent_probed_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("component.routing.presence.STORE_CHECK_S", 0.01)
    monkeypatch.setattr("component.routing.presence.RESYNC_MIN_DELAY_S", 0.01)
    store = FakeDirectoryStore()
    store.add("pizza", "Pizza Napoli", ["mario@localhost"])
    directory = Directory(store)
    await directory.reload(None)
    written: list[str] = []
    outbox = Outbox(written.append)
    presence = FakePresence()
    router = PresenceRouter(
        domain=DOMAIN,
        directory=directory,
        presence=presence,
        messages=message_router(directory, outbox, presence=presence),
        outbox=outbox,
    )
    watch = asyncio.create_task(router.watch_store())
    try:
        await asyncio.sleep(0.05)
        written.clear()
        presence.lose_everything()
        for _ in range(100):
            await asyncio.sleep(0.01)
            if any('type="probe"' in s for s in written):
                break
        probes = [s for s in written if 'type="probe"' in s]
        assert probes, "no agent was probed after the store lost its data"
    finally:
        watch.cancel()


# -- stanzas too deep or too large -------------------------------------------------


def test_depth_is_measured_without_recursion() -> None:
    root = ET.Element("iq")
    node = root
    for _ in range(100_000):  # far beyond Python's recursion limit
        node = ET.SubElement(node, "a")
    assert too_deep(root, 32)
    shallow = ET.fromstring("<iq><query><x><field><value/></field></x></query></iq>")
    assert not too_deep(shallow, 32)
    # At the limit, either side of the shortcut for children without children.
    message = ET.fromstring("<message><body>hi</body><request/></message>")
    assert not too_deep(message, 1)
    assert too_deep(message, 0)
    assert not too_deep(ET.Element("message"), 0)
    assert too_deep(ET.fromstring("<message><x><y/></x><body/></message>"), 1)
    assert not too_deep(ET.fromstring("<message><x><y/></x><body/></message>"), 2)


def test_a_deep_iq_is_answered_from_its_attributes(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = ComponentStream(ComponentSettings(domain=DOMAIN))
    sent: list[str] = []
    monkeypatch.setattr(stream, "send_raw", lambda data: sent.append(str(data)))
    deep = "<foo xmlns='urn:x:unknown'>" + "<a>" * 2000 + "</a>" * 2000 + "</foo>"
    stream._spawn_event(
        ET.fromstring(
            f'<iq xmlns="jabber:component:accept" type="get" id="d1" '
            f'from="anna@localhost/x" to="{DOMAIN}">{deep}</iq>'
        )
    )
    [reply] = [ET.fromstring(s) for s in sent]
    assert (reply.get("type"), reply.get("id"), reply.get("to")) == (
        "error",
        "d1",
        "anna@localhost/x",
    )
    assert reply.find(".//{urn:ietf:params:xml:ns:xmpp-stanzas}policy-violation") is not None


def test_the_outbox_never_writes_a_stanza_ejabberd_would_close_the_stream_for() -> None:
    written: list[str] = []
    outbox = Outbox(written.append, max_stanza_size=1000)
    small, huge = "<message>ok</message>", "<message>" + "é" * 600 + "</message>"
    outbox.send([small, huge, small])
    assert written == [small + small]
    assert stanza_size(huge) > 1000 > len(huge)


# -- nicknames and agents ------------------------------------------------------------


def test_nicknames_are_bounded_and_cleaned() -> None:
    assert clean_nick("  Anna\u202e K.\u200b \n") == "Anna K."
    assert clean_nick(">" * 70_000) == ">" * MAX_NICK
    assert clean_nick("\u202e\u200b") is None


@pytest.mark.asyncio
async def test_a_long_nickname_reaches_agents_cut(env: Env) -> None:
    await env.online("mario@localhost")
    nick = f'<nick xmlns="http://jabber.org/protocol/nick">{"N" * 5000}</nick>'
    out = await env.send(chat(ANNA, PIZZA, "hello", extra=nick))
    [to_agent] = [s for s in out if s.get("to") == "mario@localhost"]
    shown = to_agent.find("{http://jabber.org/protocol/nick}nick")
    assert shown is not None and shown.text == "N" * MAX_NICK


def test_agents_are_accounts_of_the_service_host() -> None:
    assert agent_jid("Mario@localhost", "localhost") == "mario@localhost"
    for address in ("pizza@biz.localhost", "biz.localhost", "x@elsewhere.example"):
        with pytest.raises(ValueError, match=r"not an account of localhost|expected user@domain"):
            agent_jid(address, "localhost")


@pytest.mark.asyncio
async def test_a_customer_cannot_flood_agents_with_chat_states(env: Env) -> None:
    await env.online("mario@localhost")
    await env.send(chat(ANNA, PIZZA, "hello"))  # a conversation exists
    composing = '<composing xmlns="http://jabber.org/protocol/chatstates"/>'
    for n in range(130):
        env.submit(chat(ANNA, PIZZA, None, mid=f"cs{n}", extra=composing))
    out = await env.output()
    forwarded = [s for s in out if s.get("to") == "mario@localhost"]
    assert len(forwarded) == 120  # limits.customer_signal_rate; the rest are dropped
    assert not [s for s in out if s.get("type") == "error"]


class _PushContacts:
    """The two ContactStore methods Preferences.add_push uses."""

    def __init__(self) -> None:
        self.endpoints: list[str] = []

    async def push_subscriptions(self, address: str) -> list[PushSubscription]:
        return [PushSubscription(n, address, e, "k", "a") for n, e in enumerate(self.endpoints)]

    async def add_push(self, address: str, endpoint: str, p256dh: str, auth: str) -> int:
        if endpoint not in self.endpoints:
            self.endpoints.append(endpoint)
        return self.endpoints.index(endpoint)


@pytest.mark.asyncio
async def test_push_subscriptions_are_capped_and_public(monkeypatch: pytest.MonkeyPatch) -> None:
    contacts = _PushContacts()
    preferences = Preferences(
        contacts=cast(ContactStore, contacts),
        limits=FakeLimits(),
        smtp=cast(SmtpSender, None),
        sender="noreply@biz.localhost",
        service_name=DOMAIN,
        allow_http_push=False,
    )
    keys = ("B" + "A" * 86, "A" * 22)  # 65 and 16 bytes, base64url
    for internal in ("https://127.0.0.1/p", "https://10.1.2.3/p", "https://push.localhost/p"):
        with pytest.raises(BadRequest, match="public push service"):
            await preferences.add_push("anna@localhost", internal, *keys)
    with pytest.raises(BadRequest, match="https"):
        await preferences.add_push("anna@localhost", "http://push.example.net/p", *keys)
    for n in range(MAX_PUSH_DEVICES):
        await preferences.add_push("anna@localhost", f"https://push.example.net/{n}", *keys)
    with pytest.raises(RateLimited):
        await preferences.add_push("anna@localhost", "https://push.example.net/one-more", *keys)
    # A device already known may register again (new keys) at the cap.
    await preferences.add_push("anna@localhost", "https://push.example.net/3", *keys)


def test_what_start_up_built_is_kept_out_of_the_collectors_walks() -> None:
    """settle_heap: the objects alive at start-up leave the collected
    generations (no 27-54 ms walk of them under load), the young generation
    is collected less often, and garbage made later is still collected."""
    threshold = gc.get_threshold()
    built_at_start_up = {"config": ["a container the collector tracks"]}
    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
        assert not any(o is built_at_start_up for o in gc.get_objects())
        assert gc.get_threshold() == (YOUNG_GENERATION_THRESHOLD, *threshold[1:])
        cycle: list[object] = []
        cycle.append(cycle)
        assert any(o is cycle for o in gc.get_objects())
        del cycle
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
