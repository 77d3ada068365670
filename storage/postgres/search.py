"""DirectorySearchStore on PostgreSQL: the directory's search, through indexes.

The SQL is :mod:`.tables.company_search`'s. Searches have connections of
their own (:data:`SETTINGS`, see :func:`storage.postgres.connect`), so that
a burst of searches never takes the message path's, and so that a search
costs its statements alone, not a transaction setting them up (three round
trips, 0.4 ms of the event loop, per call). Their plans are custom: asyncpg
prepares every statement, and a generic plan (made without the searched
text) could not tell a rare part of a name, which the trigram index finds at
once, from a common one, best read in name order until a page is full. Nor
do they start parallel workers: launching them costs more than a page (tens
of milliseconds), and on a small machine they would take the CPU of the
message path.
"""

from __future__ import annotations

from storage.models import Company, CompanySearch, KnownValues, SearchCursor
from storage.postgres.pool import Database
from storage.postgres.tables import company_search

#: The server settings of the searches' connections.
SETTINGS = {
    "plan_cache_mode": "force_custom_plan",
    "max_parallel_workers_per_gather": "0",
    "default_transaction_read_only": "on",
}


class PgDirectorySearchStore:
    """``db``: the searches' own connections (with :data:`SETTINGS`); a search
    beyond them waits for one of them, never for the message path's pool."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def page(
        self, criteria: CompanySearch, cursor: SearchCursor, limit: int
    ) -> list[Company] | None:
        async with self._db.acquire() as conn:
            return await company_search.page(conn, criteria, cursor, limit)

    async def count(self, criteria: CompanySearch, cap: int) -> int:
        async with self._db.acquire() as conn:
            return await company_search.count(conn, criteria, cap)

    async def position(self, criteria: CompanySearch, slug: str, cap: int) -> int | None:
        async with self._db.acquire() as conn:
            return await company_search.position(conn, criteria, slug, cap)

    async def known_values(self) -> KnownValues:
        async with self._db.acquire() as conn:
            return await company_search.known_values(conn)
