"""Presence routing without sockets: subscriptions, probes, agents' availability."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from xml.etree import ElementTree as ET

import pytest
import pytest_asyncio

from component.directory import Directory
from component.routing.outbox import Outbox
from component.routing.presence import PresenceRouter
from tests.unit.fakes import (
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


@pytest_asyncio.fixture
async def rig() -> AsyncIterator[Rig]:
    store = FakeDirectoryStore()
    store.add("pizza", "Pizza Napoli", ["mario@localhost"])
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
    )
    task = asyncio.create_task(router.run())
    yield Rig(router, presence, written)
    task.cancel()


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
