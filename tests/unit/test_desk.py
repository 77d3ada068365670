"""The agent desk without sockets: its transition rules, and the assignment rule in routing."""

from __future__ import annotations

import asyncio
import datetime as dt
from xml.etree import ElementTree as ET

import pytest

from component.directory import Directory
from component.features.desk import rules as desk
from component.routing.outbox import Outbox
from storage.models import (
    ActorKind,
    ArchivedMessage,
    ConversationStatus,
    Delivery,
    DeskChange,
    DeskEventKind,
    DeskState,
    Party,
)
from tests.unit.fakes import (
    FakeArchive,
    FakeConversations,
    FakeDirectoryStore,
    FakePresence,
    message_router,
)
from tests.unit.fakes_services import FakeDeskStore

OPEN, RESOLVED = ConversationStatus.OPEN, ConversationStatus.RESOLVED
MARIO, LUIGI, BOSS = "mario@localhost", "luigi@localhost", "boss@localhost"
mario = desk.Actor.agent(MARIO, admin=False)
luigi = desk.Actor.agent(LUIGI, admin=False)
boss = desk.Actor.agent(BOSS, admin=True)
operator = desk.Actor.operator()


def state(status: ConversationStatus = OPEN, assignee: str | None = None) -> DeskState:
    return DeskState(7, status, assignee)


def change(
    kind: DeskEventKind, status: ConversationStatus, to: str | None, by: desk.Actor
) -> DeskChange:
    return DeskChange(kind, status, to, by.kind, by.jid)


# -- rules -----------------------------------------------------------------------------


def test_claim() -> None:
    assert desk.claim(mario, MARIO)(state()) == change(DeskEventKind.CLAIM, OPEN, MARIO, mario)
    assert desk.claim(mario, MARIO)(state(assignee=MARIO)) is None
    with pytest.raises(desk.NotYours, match=LUIGI):
        desk.claim(mario, MARIO)(state(assignee=LUIGI))
    # An admin (or the operator) takes it over.
    assert desk.claim(boss, BOSS)(state(assignee=LUIGI)) == change(
        DeskEventKind.CLAIM, OPEN, BOSS, boss
    )
    assert desk.claim(operator, MARIO)(state(assignee=LUIGI)) == DeskChange(
        DeskEventKind.CLAIM, OPEN, MARIO, ActorKind.OPERATOR, None
    )
    with pytest.raises(desk.WrongState, match="reopen it"):
        desk.claim(boss, BOSS)(state(RESOLVED))


def test_transfer() -> None:
    mine = state(assignee=MARIO)
    assert desk.transfer(mario, LUIGI)(mine) == change(DeskEventKind.TRANSFER, OPEN, LUIGI, mario)
    assert desk.transfer(mario, None)(mine) == change(DeskEventKind.RELEASE, OPEN, None, mario)
    assert desk.transfer(mario, MARIO)(mine) is None
    assert desk.transfer(luigi, MARIO)(state()) == change(
        DeskEventKind.TRANSFER, OPEN, MARIO, luigi
    )
    with pytest.raises(desk.NotYours, match="only they or a company admin"):
        desk.transfer(luigi, LUIGI)(mine)
    assert desk.transfer(boss, LUIGI)(mine) is not None
    with pytest.raises(desk.WrongState):
        desk.transfer(mario, LUIGI)(state(RESOLVED, MARIO))


def test_resolve_and_reopen() -> None:
    assert desk.resolve(mario)(state(assignee=MARIO)) == change(
        DeskEventKind.RESOLVE, RESOLVED, MARIO, mario
    )
    assert desk.resolve(luigi)(state()) == change(DeskEventKind.RESOLVE, RESOLVED, None, luigi)
    with pytest.raises(desk.NotYours):
        desk.resolve(luigi)(state(assignee=MARIO))
    assert desk.resolve(boss)(state(assignee=MARIO)) is not None
    with pytest.raises(desk.WrongState, match="resolved already"):
        desk.resolve(mario)(state(RESOLVED))
    # Anyone reopens; the claim stays.
    assert desk.reopen(luigi)(state(RESOLVED, MARIO)) == change(
        DeskEventKind.REOPEN, OPEN, MARIO, luigi
    )
    with pytest.raises(desk.WrongState, match="open already"):
        desk.reopen(luigi)(state())


def test_errors_are_xmpp_conditions() -> None:
    assert (desk.NotYours.etype, desk.NotYours.condition) == ("auth", "forbidden")
    assert (desk.WrongState.etype, desk.WrongState.condition) == ("cancel", "not-allowed")
    assert desk.NotAnAgentOf.condition == "item-not-found"
    with pytest.raises(desk.NotAnAgentOf, match="zoe@localhost is not an agent of Pizza"):
        desk.check_agent("zoe@localhost", {MARIO}, "Pizza")
    assert desk.check_agent(MARIO, {MARIO}, "Pizza") == MARIO


# -- the assignment rule in routing ---------------------------------------------------


NS = "jabber:component:accept"


def stanza(xml: str) -> ET.Element:
    return ET.fromstring(xml.replace("<message ", f'<message xmlns="{NS}" ', 1))


@pytest.mark.asyncio
async def test_a_claimed_conversation_reaches_its_agent_alone_while_online() -> None:
    store = FakeDirectoryStore()
    store.add("pizza", "Pizza Napoli", [MARIO, LUIGI])
    directory = Directory(store)
    await directory.reload(None)
    presence = FakePresence()
    await presence.update(MARIO, "desk", "available")
    await presence.update(LUIGI, "desk", "available")
    written: list[str] = []
    conversations = FakeConversations()
    desk_store = FakeDeskStore()
    # A batch reads the desk's routing in its archive statement.
    archive = FakeArchive(conversations, route=desk_store.route)
    router = message_router(
        directory,
        Outbox(written.append),
        conversations=conversations,
        archive=archive,
        presence=presence,
        hooks=[desk.DeskHooks(desk_store)],
    )
    task = asyncio.create_task(router.run())

    def output() -> list[ET.Element]:
        stanzas = list(ET.fromstring(f"<root>{''.join(written)}</root>"))
        written.clear()
        return stanzas

    async def say(body: str, n: int = 1) -> set[str]:
        for i in range(n):
            router.submit(
                stanza(
                    f'<message from="anna@localhost/phone" to="pizza@biz.localhost" '
                    f'type="chat" id="m{body}{i}"><body>{body}</body></message>'
                )
            )
        await asyncio.sleep(0)
        await router.drain()
        return {m.get("to", "") for m in output() if m.find("body") is not None}

    try:
        assert await say("hello") == {MARIO, LUIGI}
        [conv] = conversations.rows.values()
        assert desk_store.calls == [([conv.id], [conv.id])]
        await desk_store.change(conv.id, desk.claim(mario, MARIO))
        assert await say("for mario", 3) == {MARIO}
        assert len(desk_store.calls) == 2  # one call per batch, not per message
        await presence.update(MARIO, "desk", None)
        assert await say("mario is away") == {LUIGI}

        # Archived messages delivered later (pending, sweep) follow the same rule.
        await presence.update(MARIO, "desk", "available")
        message = ArchivedMessage(
            1,
            conv.id,
            Party.CUSTOMER,
            conv.customer_jid,
            "old",
            "s1",
            None,
            dt.datetime.now(dt.UTC),
        )
        written.clear()
        await router.deliveries.deliver(Delivery(1, [message]))
        assert {m.get("to") for m in output()} == {MARIO}
        assert desk_store.calls[-1] == ([conv.id], [])  # nothing reopens on redelivery

    finally:
        task.cancel()
