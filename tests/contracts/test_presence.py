"""PresenceStore: RedisPresenceStore against FakePresence (every method)."""

from __future__ import annotations

import asyncio
import time

import pytest

from storage import redis as redis_storage
from storage.models import PresenceChange
from storage.protocols import PresenceStore
from tests.contracts.conftest import unique
from tests.unit.fakes import FakePresence

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


@pytest.fixture
def presence(redis_or_fake: redis_storage.RedisStores | None) -> PresenceStore:
    return FakePresence() if redis_or_fake is None else redis_or_fake.presence


def agent() -> str:
    return unique("mario-") + "@localhost"


async def test_an_agent_is_online_while_a_resource_is(presence: PresenceStore) -> None:
    mario = agent()
    assert await presence.update(mario, "desk", "available") == PresenceChange(False, True)
    assert await presence.update(mario, "phone", "away") == PresenceChange(True, True)
    assert await presence.update(mario, "desk", "dnd") == PresenceChange(True, True)
    assert await presence.update(mario, "desk", None) == PresenceChange(True, True)
    assert await presence.update(mario, "phone", None) == PresenceChange(True, False)
    assert await presence.update(mario, "phone", None) == PresenceChange(False, False)


async def test_online_among(presence: PresenceStore) -> None:
    mario, luigi, peach = agent(), agent(), agent()
    await presence.update(mario, "desk", "available")
    await presence.update(luigi, "desk", "xa")
    await presence.update(peach, "desk", "available")
    await presence.update(peach, "desk", None)
    assert await presence.online_among([mario, luigi, peach, agent()]) == {mario, luigi}
    assert await presence.online_among([]) == set()


async def test_forget_drops_every_resource(presence: PresenceStore) -> None:
    mario = agent()
    await presence.update(mario, "desk", "available")
    await presence.update(mario, "phone", "available")
    await presence.forget(mario)
    assert await presence.online_among([mario]) == set()
    assert await presence.update(mario, "desk", "available") == PresenceChange(False, True)


async def test_prune_drops_the_resources_not_seen_since(presence: PresenceStore) -> None:
    mario, luigi, never = agent(), agent(), agent()
    started = await presence.clock_ms()
    assert abs(started - time.time() * 1000) < 5_000  # milliseconds of wall-clock time
    await presence.update(mario, "desk", "available")
    await presence.update(mario, "phone", "available")
    await presence.update(luigi, "desk", "available")
    # Everything was seen at or after `started`: nothing goes.
    assert await presence.prune([mario, luigi, never], started) == []
    assert await presence.online_among([mario, luigi]) == {mario, luigi}

    await asyncio.sleep(0.005)
    probed = await presence.clock_ms()
    assert probed > started
    await presence.update(mario, "phone", "away")  # answered the probe
    assert await presence.prune([mario, luigi, never], probed) == [luigi]
    assert await presence.online_among([mario, luigi]) == {mario}
    # Its "desk" went too: "phone" was the last resource.
    assert await presence.update(mario, "phone", None) == PresenceChange(True, False)
    assert await presence.prune([], probed) == []


async def test_the_generation_holds_while_the_data_does(presence: PresenceStore) -> None:
    first = await presence.generation()
    assert first
    mario = agent()
    await presence.update(mario, "desk", "available")
    await presence.forget(mario)
    assert await presence.generation() == first
