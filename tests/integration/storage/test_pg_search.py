"""The directory search's own connections: a burst of searches holds at most
``search_connections`` of them, and the message path's pool stays free."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from storage import postgres
from storage.models import CompanySearch, SearchCursor

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def _waiting_searches(sql: asyncpg.Connection[asyncpg.Record]) -> int:
    """The test database's backends waiting for a lock (on companies)."""
    return int(
        await sql.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
    )


async def test_searches_hold_at_most_their_connections(
    pg_dsn: str, sql: asyncpg.Connection[asyncpg.Record]
) -> None:
    stores = await postgres.connect(
        pg_dsn,
        min_size=1,
        max_size=4,
        command_timeout=30.0,
        search_connections=2,
    )
    locker = await asyncpg.connect(pg_dsn)
    searches: list[asyncio.Task[object]] = []
    try:
        # Searches block on the table's lock, each holding its connection.
        locking = locker.transaction()
        await locking.start()
        await locker.execute("LOCK TABLE companies IN ACCESS EXCLUSIVE MODE")
        searches = [
            asyncio.create_task(
                stores.search.page(CompanySearch(name="no such name"), SearchCursor(), 5)
            )
            for _ in range(5)
        ]
        for _ in range(1000):  # until two of them wait
            if await _waiting_searches(sql) >= 2:
                break
            await asyncio.sleep(0.01)
        # The message path still gets a connection at once (two of the four
        # are free), and no third search has reached PostgreSQL.
        assert await stores.leases.take("search-budget-test", 1.0)
        for _ in range(20):
            await asyncio.sleep(0.01)
            assert await _waiting_searches(sql) == 2
        await locking.rollback()
        assert [await s for s in searches] == [[]] * 5
    finally:
        await locker.close()
        for search in searches:
            search.cancel()
        await stores.close()
