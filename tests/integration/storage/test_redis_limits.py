"""LimitStore on Redis: fixed-window counters and first-seen markers."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio

from storage import redis as redis_storage
from storage.models import Limit, Once

#: The kind of counter these tests hit; every kind counts the same way.
M = Limit.CUSTOMER_MESSAGES

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


@pytest.fixture
def subject() -> str:
    return f"{uuid.uuid4().hex[:8]}@localhost"


async def test_hit_counts_per_subject(rd: redis_storage.RedisStores, subject: str) -> None:
    a, b = f"{subject}/a", f"{subject}/b"

    assert await rd.limits.hit(M, [a, b], 2, 60) == [True, True]
    assert await rd.limits.hit(M, [a], 2, 60) == [True]
    assert await rd.limits.hit(M, [a, b], 2, 60) == [False, True]
    assert await rd.limits.hit(M, [a, b], 2, 60) == [False, False]
    assert await rd.limits.hit(M, [], 2, 60) == []


async def test_a_subject_twice_in_one_call_counts_twice(
    rd: redis_storage.RedisStores, subject: str
) -> None:
    assert await rd.limits.hit(M, [subject, subject, subject], 2, 60) == [True, True, False]


async def test_window_expires(
    rd: redis_storage.RedisStores,
    redis_client: redis.asyncio.Redis,
    redis_prefix: str,
    subject: str,
) -> None:
    assert await rd.limits.hit(M, [subject], 1, 1) == [True]
    assert await rd.limits.hit(M, [subject], 1, 1) == [False]
    key = f"{redis_prefix}:limit:1:customer:{subject}"
    assert 0 < await redis_client.pttl(key) <= 1000  # set once, never extended

    await asyncio.sleep(1.1)

    assert await rd.limits.hit(M, [subject], 1, 1) == [True]


async def test_kinds_count_apart(rd: redis_storage.RedisStores, subject: str) -> None:
    assert await rd.limits.hit(M, [subject], 1, 60) == [True]
    assert await rd.limits.hit(Limit.CUSTOMER_REQUESTS, [subject], 1, 60) == [True]
    assert await rd.limits.hit(M, [subject], 1, 60) == [False]


async def test_windows_of_different_length_count_apart(
    rd: redis_storage.RedisStores, subject: str
) -> None:
    assert await rd.limits.hit(M, [subject], 1, 60) == [True]
    assert await rd.limits.hit(M, [subject], 1, 3600) == [True]


async def test_first_seen(
    rd: redis_storage.RedisStores,
    redis_client: redis.asyncio.Redis,
    redis_prefix: str,
    subject: str,
) -> None:
    a, b = f"{subject}/a", f"{subject}/b"

    assert await rd.limits.first_seen(Once.AWAY_REPLY, [(a,)], 60) == [True]
    assert await rd.limits.first_seen(Once.AWAY_REPLY, [(a,), (b, 1), (b, 1)], 60) == [
        False,
        True,
        False,
    ]
    assert 55 < await redis_client.ttl(f"{redis_prefix}:seen:away:{a}") <= 60
    assert await rd.limits.first_seen(Once.AWAY_REPLY, [], 60) == []


async def test_first_seen_again_after_ttl(rd: redis_storage.RedisStores, subject: str) -> None:
    assert await rd.limits.first_seen(Once.MARKER_FORWARDED, [(subject,)], 1) == [True]
    await asyncio.sleep(1.1)
    assert await rd.limits.first_seen(Once.MARKER_FORWARDED, [(subject,)], 1) == [True]


async def test_a_batch_crossing_the_limit_lets_its_first_events_through(
    rd: redis_storage.RedisStores, redis_client: redis.asyncio.Redis, redis_prefix: str
) -> None:
    a, b = f"a-{uuid.uuid4().hex}", f"b-{uuid.uuid4().hex}"
    assert await rd.limits.hit(M, [a, a, b, a], 2, 60) == [True, True, True, False]
    assert await rd.limits.hit(M, [b, a, b], 2, 60) == [True, False, False]
    ttl = await redis_client.ttl(f"{redis_prefix}:limit:60:customer:{a}")
    assert 0 < ttl <= 60
