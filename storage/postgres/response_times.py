"""ResponseTimeStore on PostgreSQL: first-response times measured from the archive.

Read-only over ``messages`` and ``conversations``: one statement per company
(:func:`storage.postgres.tables.messages.median_first_response`), which the
component caches (it is shown in disco#info, see
:mod:`component.features.directory.response_times`).
"""

from __future__ import annotations

import datetime as dt

from storage.postgres.pool import Database
from storage.postgres.tables import messages


class PgResponseTimeStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def median_first_response(
        self, company_id: int, *, since: dt.datetime, silence_s: float
    ) -> float | None:
        async with self._db.acquire() as conn:
            return await messages.median_first_response(conn, company_id, since, silence_s)
