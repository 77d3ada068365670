"""RosterJobStore on PostgreSQL, composed from :mod:`.tables.roster_jobs`.

Jobs are queued by triggers (see the table module); this module hands them
to workers and wakes them up through a LISTEN on the queue's channel.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from storage.models import RosterJob
from storage.postgres.listen import listen
from storage.postgres.pool import Database
from storage.postgres.tables import roster_jobs

#: Channel of the roster_jobs insert trigger (empty payload).
CHANNEL = "orgchat_roster_jobs"


class PgRosterJobStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(self, limit: int) -> list[RosterJob]:
        async with self._db.acquire() as conn:
            return await roster_jobs.claim(conn, limit)

    async def done(self, job_id: int) -> None:
        async with self._db.acquire() as conn:
            await roster_jobs.delete(conn, job_id)

    async def retry_later(self, job_id: int, delay_s: float, error: str) -> None:
        async with self._db.acquire() as conn:
            await roster_jobs.postpone(conn, job_id, delay_s, error)

    async def watch(self, wakeup: Callable[[], Awaitable[None]]) -> None:
        async def on_change(_payload: str | None) -> None:
            await wakeup()

        await listen(self._db, CHANNEL, on_change)
