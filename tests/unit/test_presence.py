"""Presence routing without sockets: subscriptions, probes, agents' availability."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from xml.etree import ElementTree as ET

import pytest
import pytest_asyncio

from component.directory import Directory
from component.routing.outbox import Outbox
from component.routing.presence import PresenceRouter
from tests.unit.fakes import (
    FakeConversations,
    FakeDirectoryStore,
    FakePresence,
    message_router,
)

pytestmark = pytest.mark.asyncio

NS = "jabber:component:accept"
CONV = "pizza+abcdefghij@biz.localhost"


class Rig:
    def __init__(self, router: PresenceRouter, presence: FakePresence, written: list[str]):
        self.router, self.presence, self.written = router, presence, written

    async def send(self, xml: str) -> list[ET.Element]:
        self.router.submit(ET.fromstring(xml.replace("<presence ", f'<presence xmlns="{NS}" ', 1)))
        for _ in range(20):
            await asyncio.sleep(0)
        root = ET.fromstring(f'<r xmlns="{NS}">{"".join(self.written)}</r>')
        self.written.clear()
        return list(root)


@contextlib.asynccontextmanager
async def running(
    agents: list[str], conversations: FakeConversations | None = None
) -> AsyncIterator[tuple[Rig, Directory]]:
    store = FakeDirectoryStore()
    store.add("pizza", "Pizza Napoli", agents)
    directory = Directory(store)
    await directory.reload(None)
    written: list[str] = []
    outbox = Outbox(written.append)
    presence = FakePresence()
    messages = message_router(directory, outbox, presence=presence)
    router = PresenceRouter(
        domain="biz.localhost",
        directory=directory,
        presence=presence,
        messages=messages,
        outbox=outbox,
        conversations=conversations,
    )
    task = asyncio.create_task(router.run())
    yield Rig(router, presence, written), directory
    task.cancel()


@pytest_asyncio.fixture
async def rig() -> AsyncIterator[Rig]:
    async with running(["mario@localhost"]) as (rig, _):
        yield rig


def types(stanzas: list[ET.Element]) -> list[str | None]:
    return [s.get("type") for s in stanzas]


async def test_anyone_may_subscribe_to_a_company(rig: Rig) -> None:
    out = await rig.send(
        '<presence from="anna@localhost/p" to="pizza@biz.localhost" type="subscribe"/>'
    )
    assert types(out) == ["subscribed", None]
    assert out[1].findtext(f"{{{NS}}}status") == "Pizza Napoli"


async def test_only_agents_may_subscribe_to_a_conversation(rig: Rig) -> None:
    out = await rig.send(f'<presence from="anna@localhost/p" to="{CONV}" type="subscribe"/>')
    assert types(out) == ["unsubscribed"]
    out = await rig.send(f'<presence from="mario@localhost/d" to="{CONV}" type="subscribe"/>')
    assert types(out) == ["subscribed"]
    out = await rig.send(
        '<presence from="anna@localhost/p" to="nope@biz.localhost" type="subscribe"/>'
    )
    assert types(out) == ["unsubscribed"]


async def test_probes_are_answered_by_companies_only(rig: Rig) -> None:
    out = await rig.send(
        '<presence from="mario@localhost/d" to="pizza@biz.localhost" type="probe"/>'
    )
    # Available, so from a resource: IQs to the resource a client saw are the company's.
    assert types(out) == [None] and out[0].get("from") == "pizza@biz.localhost/orgchat"
    out = await rig.send(
        '<presence from="mario@localhost/d" to="ghost@biz.localhost" type="probe"/>'
    )
    assert types(out) == ["unsubscribed"]


async def test_a_conversation_is_online_for_its_agents_while_its_customer_is() -> None:
    conversations = FakeConversations()
    async with running(["mario@localhost", "luigi@localhost"], conversations) as (rig, directory):
        company = directory.company("pizza")
        assert company is not None
        [conv] = await conversations.open_many([(company.id, "anna@localhost", None)])
        contact = f"pizza+{conv.token}@biz.localhost"

        def seen(out: list[ET.Element]) -> list[tuple[str | None, ...]]:
            return [(s.get("from"), s.get("to"), s.get("type")) for s in out]

        # Anna's presence reaches the company: its agents see her contact online.
        out = await rig.send('<presence from="anna@localhost/p" to="pizza@biz.localhost"/>')
        assert seen(out) == [
            (f"{contact}/orgchat", "luigi@localhost", None),
            (f"{contact}/orgchat", "mario@localhost", None),
        ]
        # An agent's server probes the contact: answered with her availability.
        probe = f'<presence from="mario@localhost/d" to="{contact}" type="probe"/>'
        assert seen(await rig.send(probe)) == [(f"{contact}/orgchat", "mario@localhost", None)]
        # Still online at another resource: still online for the agents.
        await rig.send('<presence from="anna@localhost/q" to="pizza@biz.localhost"/>')
        out = await rig.send(
            '<presence from="anna@localhost/p" to="pizza@biz.localhost" type="unavailable"/>'
        )
        assert types(out) == [None, None]
        out = await rig.send(
            '<presence from="anna@localhost/q" to="pizza@biz.localhost" type="unavailable"/>'
        )
        assert types(out) == ["unavailable", "unavailable"]
        assert types(await rig.send(probe)) == ["unavailable"]
        # A stranger's probe, or a probe of a conversation that is gone, is refused.
        stranger = f'<presence from="eve@localhost/x" to="{contact}" type="probe"/>'
        assert types(await rig.send(stranger)) == ["unsubscribed"]
        gone = (
            '<presence from="mario@localhost/d" to="pizza+zzzzzzzzzz@biz.localhost" type="probe"/>'
        )
        assert types(await rig.send(gone)) == ["unsubscribed"]


async def test_agents_availability_per_resource(rig: Rig) -> None:
    away = "<show>away</show>"
    await rig.send(
        f'<presence from="mario@localhost/desk" to="pizza@biz.localhost">{away}</presence>'
    )
    await rig.send('<presence from="mario@localhost/phone" to="pizza@biz.localhost"/>')
    assert rig.presence.resources["mario@localhost"] == {"desk": "away", "phone": "available"}
    await rig.send(
        '<presence from="mario@localhost/desk" to="pizza@biz.localhost" type="unavailable"/>'
    )
    assert rig.presence.resources["mario@localhost"] == {"phone": "available"}
    # Customers' presence to a company is tracked too (the cascade reads it),
    # but never makes them an agent: no pending messages are delivered to them.
    await rig.send('<presence from="anna@localhost/p" to="pizza@biz.localhost"/>')
    assert rig.presence.resources["anna@localhost"] == {"p": "available"}
    await rig.send(
        '<presence from="anna@localhost/p" to="pizza@biz.localhost" type="unavailable"/>'
    )
    assert not rig.presence.resources["anna@localhost"]
    # Presence to a conversation address or the domain tells nothing.
    await rig.send('<presence from="bob@localhost/p" to="biz.localhost"/>')
    assert "bob@localhost" not in rig.presence.resources
