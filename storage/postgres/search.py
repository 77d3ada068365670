"""DirectorySearchStore on PostgreSQL: the directory's search, through indexes.

The SQL is :mod:`.tables.company_search`'s. Each search runs in a read-only
transaction with ``plan_cache_mode = force_custom_plan``: asyncpg prepares
every statement, and a generic plan (made without the searched text) could
not tell a rare part of a name, which the trigram index finds at once, from
a common one, best read in name order until a page is full. Nor does it
start parallel workers: launching them costs more than a page (tens of
milliseconds), and on a small machine they would take the CPU of the
message path.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from storage.models import Company, CompanySearch, KnownValues, SearchCursor
from storage.postgres.pool import Conn, Database
from storage.postgres.tables import company_search


class PgDirectorySearchStore:
    """``connections``: how many of the pool's connections searches hold at
    once, at most; a search beyond them waits for one of them, not for the
    pool, so that a burst of searches never takes the message path's."""

    def __init__(self, db: Database, connections: int) -> None:
        self._db = db
        self._budget = asyncio.Semaphore(connections)

    @contextlib.asynccontextmanager
    async def _searching(self) -> AsyncIterator[Conn]:
        async with (
            self._budget,
            self._db.acquire() as conn,
            conn.transaction(readonly=True),
        ):
            await conn.execute(
                "SET LOCAL plan_cache_mode = force_custom_plan;"
                " SET LOCAL max_parallel_workers_per_gather = 0"
            )
            yield conn

    async def page(
        self, criteria: CompanySearch, cursor: SearchCursor, limit: int
    ) -> list[Company] | None:
        async with self._searching() as conn:
            return await company_search.page(conn, criteria, cursor, limit)

    async def count(self, criteria: CompanySearch, cap: int) -> int:
        async with self._searching() as conn:
            return await company_search.count(conn, criteria, cap)

    async def position(self, criteria: CompanySearch, slug: str, cap: int) -> int | None:
        async with self._searching() as conn:
            return await company_search.position(conn, criteria, slug, cap)

    async def known_values(self) -> KnownValues:
        async with self._db.acquire() as conn:
            return await company_search.known_values(conn)
