"""LeaseStore on PostgreSQL: one holder at a time, taken again once run out."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from storage import postgres

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def test_one_holder_until_the_lease_runs_out(
    pg: postgres.PostgresStores, sql: asyncpg.Connection
) -> None:
    name = f"test-{uuid.uuid4().hex[:8]}"

    assert await pg.leases.take(name, 60)
    assert not await pg.leases.take(name, 60)
    assert not await pg.leases.take(name, 0.1), "a shorter lease does not shorten the held one"
    held = await sql.fetchval("SELECT held_until - now() FROM leases WHERE name = $1", name)
    assert held.total_seconds() > 50

    await sql.execute("UPDATE leases SET held_until = now() WHERE name = $1", name)
    assert await pg.leases.take(name, 60), "a lease that ran out is taken again"
    assert await pg.leases.take(f"{name}-other", 60), "leases are independent by name"


async def test_takers_at_the_same_moment_get_one_lease(pg: postgres.PostgresStores) -> None:
    name = f"test-{uuid.uuid4().hex[:8]}"
    taken = await asyncio.gather(*(pg.leases.take(name, 60) for _ in range(8)))
    assert sorted(taken) == [False] * 7 + [True]
