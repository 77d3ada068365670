"""Presence after a storage outage: what failed is probed for again, without sockets.

ejabberd sends an agent's presence once. If Redis cannot take it, or
PostgreSQL cannot hand over the agent's pending messages, the presence router
re-probes every agent once storage is back, and the answers redo the work.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence
from xml.etree import ElementTree as ET

import pytest
import pytest_asyncio

from component.directory import Directory
from component.routing import presence as presence_mod
from component.routing.outbox import Outbox
from component.routing.presence import PresenceRouter
from storage.errors import Unavailable
from storage.models import Delivery
from tests.unit.fakes import (
    FakeArchive,
    FakeConversations,
    FakeDirectoryStore,
    FakePresence,
    message_router,
)

pytestmark = pytest.mark.asyncio

NS = "jabber:component:accept"
DOMAIN = "biz.localhost"
AGENT = "mario@localhost"
COMPANY = f"pizza@{DOMAIN}"


class OutagePresence(FakePresence):
    """FakePresence counting the re-probes that Redis refused (clock_ms is their first call)."""

    def __init__(self) -> None:
        super().__init__()
        self.failed_refreshes = 0

    async def clock_ms(self) -> int:
        if self.switch.down:
            self.failed_refreshes += 1
        return await super().clock_ms()


@dataclasses.dataclass
class Env:
    router: PresenceRouter
    presence: OutagePresence
    archive: FakeArchive
    written: list[str]

    def submit(self, xml: str) -> None:
        self.router.submit(ET.fromstring(xml.replace("<presence ", f'<presence xmlns="{NS}" ', 1)))

    def probes(self) -> list[ET.Element]:
        root = ET.fromstring(f'<root xmlns="{NS}">{"".join(self.written)}</root>')
        return [s for s in root if s.get("type") == "probe" and s.get("to") == AGENT]

    async def until(self, check: Callable[[], bool]) -> None:
        for _ in range(1000):
            if check():
                return
            await asyncio.sleep(0.002)
        raise AssertionError("condition not reached")


@pytest_asyncio.fixture
async def env(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Env]:
    monkeypatch.setattr(presence_mod, "RESYNC_MIN_DELAY_S", 0.01)
    store = FakeDirectoryStore()
    store.add("pizza", "Pizza Napoli", [AGENT])
    directory = Directory(store)
    await directory.reload(None)
    written: list[str] = []
    outbox = Outbox(written.append)
    presence, conversations = OutagePresence(), FakeConversations()
    archive = FakeArchive(conversations)
    messages = message_router(
        directory,
        outbox,
        domain=DOMAIN,
        conversations=conversations,
        archive=archive,
        presence=presence,
    )
    router = PresenceRouter(
        domain=DOMAIN, directory=directory, presence=presence, messages=messages, outbox=outbox
    )
    task = asyncio.create_task(router.run())
    yield Env(router, presence, archive, written)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


AVAILABLE = f'<presence from="{AGENT}/desk" to="{COMPANY}"/>'


async def test_presence_lost_while_redis_is_down_is_probed_for_once_it_is_back(env: Env) -> None:
    env.presence.switch.down = True
    env.submit(AVAILABLE)
    await env.until(lambda: env.presence.failed_refreshes >= 2)  # retried while down
    assert env.probes() == []
    assert env.presence.resources.get(AGENT) is None

    env.presence.switch.down = False
    await env.until(lambda: len(env.probes()) == 1)
    assert env.probes()[0].get("from") == COMPANY
    env.submit(AVAILABLE)  # what ejabberd answers for an online agent
    await env.until(lambda: env.presence.resources.get(AGENT) == {"desk": "available"})


async def test_pending_claim_failed_while_postgres_is_down_is_retried(env: Env) -> None:
    claims: list[Sequence[int]] = []
    postgres_down = True

    async def claim_pending(company_ids: Sequence[int], limit: int) -> Delivery | None:
        claims.append(company_ids)
        if postgres_down:
            raise Unavailable("fake outage")
        return None

    env.archive.claim_pending = claim_pending  # type: ignore[method-assign]
    env.submit(AVAILABLE)
    await env.until(lambda: len(env.probes()) == 1)  # Redis took it, the claim failed
    assert claims == [[1]]

    postgres_down = False
    env.submit(AVAILABLE)  # the agent answers the probe: the claim is made again
    await env.until(lambda: len(claims) == 2)
    assert env.presence.resources[AGENT] == {"desk": "available"}
    assert env.router._resync_delay == presence_mod.RESYNC_MIN_DELAY_S


async def test_resync_backs_off_while_the_outage_lasts(env: Env) -> None:
    env.presence.switch.down = True
    env.submit(AVAILABLE)
    await env.until(lambda: env.presence.failed_refreshes >= 4)
    # 0.01, 0.02, 0.04, 0.08 s waited; the next wait is at least twice the last.
    assert env.router._resync_delay >= 0.16
    assert env.router._resync_delay <= presence_mod.RESYNC_MAX_DELAY_S
