"""LimitStore: RedisLimitStore against FakeLimits.

Covered: ``hit`` and ``first_seen``, windows and expiries included. Left out:
``forget`` (the fake has none; tests/integration/storage/test_redis_limits.py
tests it). FakeLimits' ``allow`` is a test knob, not part of the interface:
the contract runs without it.
"""

from __future__ import annotations

import asyncio

import pytest

from storage import redis as redis_storage
from storage.models import Limit, Once
from storage.protocols import LimitStore
from tests.contracts.conftest import unique
from tests.unit.fakes import FakeLimits

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

KIND, OTHER_KIND = Limit.CUSTOMER_MESSAGES, Limit.CUSTOMER_REQUESTS


@pytest.fixture
def limits(redis_or_fake: redis_storage.RedisStores | None) -> LimitStore:
    return FakeLimits() if redis_or_fake is None else redis_or_fake.limits


async def test_hit_counts_each_subject_in_order(limits: LimitStore) -> None:
    anna, bob = unique("anna-"), unique("bob-")
    assert await limits.hit(KIND, [anna, anna, bob], 2, 60) == [True, True, True]
    assert await limits.hit(KIND, [anna, bob, bob], 2, 60) == [False, True, False]
    assert await limits.hit(KIND, [], 2, 60) == []
    # Another kind, or another window, is another counter.
    assert await limits.hit(OTHER_KIND, [anna], 1, 60) == [True]
    assert await limits.hit(KIND, [anna], 1, 61) == [True]


async def test_a_subject_is_its_text(limits: LimitStore) -> None:
    company = int(unique("").replace("-", ""), 16) % 10**9
    assert await limits.hit(Limit.COMPANY_REQUESTS, [company], 1, 60) == [True]
    assert await limits.hit(Limit.COMPANY_REQUESTS, [str(company)], 1, 60) == [False]


async def test_a_window_starts_at_its_first_event(limits: LimitStore) -> None:
    anna = unique("anna-")
    assert await limits.hit(KIND, [anna, anna], 1, 1) == [True, False]
    await asyncio.sleep(1.1)
    assert await limits.hit(KIND, [anna, anna], 1, 1) == [True, False]


async def test_first_seen(limits: LimitStore) -> None:
    conv = unique("")
    marker, other = (conv, "displayed", "m1"), (conv, "displayed", "m2")
    kind = Once.MARKER_FORWARDED
    assert await limits.first_seen(kind, [marker, other, marker], 60) == [True, True, False]
    assert await limits.first_seen(kind, [marker], 60) == [False]
    assert await limits.first_seen(Once.AWAY_REPLY, [marker], 60) == [True]
    assert await limits.first_seen(kind, [], 60) == []
    # A key is its parts joined by colons.
    assert await limits.first_seen(kind, [(f"{conv}:displayed", "m1")], 60) == [False]


async def test_first_seen_forgets_after_its_ttl(limits: LimitStore) -> None:
    key = (unique(""), "opening")
    assert await limits.first_seen(Once.AWAY_REPLY, [key], 1) == [True]
    assert await limits.first_seen(Once.AWAY_REPLY, [key], 1) == [False]
    await asyncio.sleep(1.1)
    assert await limits.first_seen(Once.AWAY_REPLY, [key], 1) == [True]
