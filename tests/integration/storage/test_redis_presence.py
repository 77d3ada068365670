"""PresenceStore on Redis: per-resource availability and online transitions."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio

from storage import redis as redis_storage
from storage.models import PresenceChange

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


@pytest.fixture
def agent() -> str:
    return f"agent-{uuid.uuid4().hex[:8]}@localhost"


async def test_transitions_across_resources(rd: redis_storage.RedisStores, agent: str) -> None:
    update = rd.presence.update
    assert await update(agent, "phone", "available") == PresenceChange(False, True)
    assert await update(agent, "laptop", "dnd") == PresenceChange(True, True)
    assert await update(agent, "phone", "away") == PresenceChange(True, True)
    assert await update(agent, "phone", None) == PresenceChange(True, True)  # laptop still on
    assert await update(agent, "laptop", None) == PresenceChange(True, False)
    assert await update(agent, "laptop", None) == PresenceChange(False, False)
    assert await update(agent, "tablet", "xa") == PresenceChange(False, True)


async def test_one_hash_per_agent_under_the_prefix(
    rd: redis_storage.RedisStores,
    redis_client: redis.asyncio.Redis,
    redis_prefix: str,
    agent: str,
) -> None:
    before = await rd.presence.clock_ms()
    await rd.presence.update(agent, "phone", "chat")
    await rd.presence.update(agent, "laptop", "available")
    after = await rd.presence.clock_ms()

    stored = await redis_client.hgetall(f"{redis_prefix}:presence:{agent}")
    assert {res: value.split()[0] for res, value in stored.items()} == {
        "phone": "chat",
        "laptop": "available",
    }
    # Each resource carries the server time it was last seen at.
    assert all(before <= int(value.split()[1]) <= after for value in stored.values())


async def test_prune_drops_only_resources_not_seen_since(
    rd: redis_storage.RedisStores, agent: str
) -> None:
    quiet, both = f"quiet-{agent}", f"both-{agent}"
    await rd.presence.update(quiet, "phone", "available")
    await rd.presence.update(both, "phone", "available")
    await rd.presence.update(both, "laptop", "available")
    await asyncio.sleep(0.005)
    probe_time = await rd.presence.clock_ms()
    await asyncio.sleep(0.005)
    await rd.presence.update(both, "laptop", "away")  # answered the probe

    assert await rd.presence.prune([quiet, both, f"never-{agent}"], probe_time) == [quiet]
    assert await rd.presence.online_among([quiet, both]) == {both}
    assert await rd.presence.update(both, "phone", None) == PresenceChange(True, True)
    assert await rd.presence.prune([], probe_time) == []


async def test_online_among(rd: redis_storage.RedisStores, agent: str) -> None:
    online, offline, gone = f"on-{agent}", f"off-{agent}", f"gone-{agent}"
    await rd.presence.update(online, "r", "available")
    await rd.presence.update(gone, "r", "available")
    await rd.presence.update(gone, "r", None)

    assert await rd.presence.online_among([online, offline, gone]) == {online}
    assert await rd.presence.online_among([]) == set()


async def test_forget(rd: redis_storage.RedisStores, agent: str) -> None:
    await rd.presence.update(agent, "phone", "available")
    await rd.presence.update(agent, "laptop", "available")

    await rd.presence.forget(agent)
    await rd.presence.forget(agent)  # twice is harmless

    assert await rd.presence.online_among([agent]) == set()
    assert await rd.presence.update(agent, "phone", "available") == PresenceChange(False, True)


async def test_concurrent_updates_report_one_transition(
    rd: redis_storage.RedisStores, agent: str
) -> None:
    changes = await asyncio.gather(
        *(rd.presence.update(agent, f"r{n}", "available") for n in range(20))
    )
    assert sum(1 for c in changes if not c.was_online and c.is_online) == 1

    changes = await asyncio.gather(*(rd.presence.update(agent, f"r{n}", None) for n in range(20)))
    assert sum(1 for c in changes if c.was_online and not c.is_online) == 1


async def test_script_reloaded_after_flush(
    rd: redis_storage.RedisStores, redis_client: redis.asyncio.Redis, agent: str
) -> None:
    """After a Redis restart (or SCRIPT FLUSH) EVALSHA answers NOSCRIPT."""
    await rd.presence.update(agent, "phone", "available")
    await redis_client.script_flush()

    assert await rd.presence.update(agent, "phone", None) == PresenceChange(True, False)


async def test_a_new_generation_once_the_data_is_lost(
    rd: redis_storage.RedisStores, redis_client: redis.asyncio.Redis, redis_prefix: str, agent: str
) -> None:
    before = await rd.presence.generation()
    await rd.presence.update(agent, "desk", "available")
    assert await rd.presence.generation() == before
    # What a Redis restart without persistence does to this prefix's keys.
    keys = [key async for key in redis_client.scan_iter(match=f"{redis_prefix}:presence*")]
    await redis_client.delete(*keys)
    after = await rd.presence.generation()
    assert after != before
    assert await rd.presence.generation() == after
