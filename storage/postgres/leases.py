"""LeaseStore on PostgreSQL, composed from :mod:`.tables.leases`."""

from __future__ import annotations

from storage.postgres.pool import Database
from storage.postgres.tables import leases


class PgLeaseStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def take(self, name: str, seconds: float) -> bool:
        """See LeaseStore."""
        async with self._db.acquire() as conn:
            return await leases.take(conn, name, seconds)
