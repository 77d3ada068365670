"""ResponseTimeStore on PostgreSQL: first-response times measured from the archive.

Read-only over ``messages`` and ``conversations``: one statement per company,
which the component caches (it is shown in disco#info, see
:mod:`component.response_times`).
"""

from __future__ import annotations

import datetime as dt

from storage.postgres.pool import Database

# Per conversation, in time order: each message's predecessor (the silence
# before it) and the first agent message from it on (the reply that ends a
# wait it starts). Messages up to one silence before ``since`` are read too,
# so that the silence before the first ones of the period is known; a
# customer message starts a wait when its silence is long enough, and the
# starts that share a reply are one wait, which began at the earliest.
_MEDIAN_FIRST_RESPONSE = """
WITH timeline AS (
    SELECT m.conversation_id, m.direction, m.ts,
           lag(m.ts) OVER w AS previous_ts,
           min(m.ts) FILTER (WHERE m.direction = 'out')
               OVER (w ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING) AS reply_ts
      FROM messages m
      JOIN conversations c ON c.id = m.conversation_id
     WHERE c.company_id = $1
       AND m.ts >= $2::timestamptz - make_interval(secs => $3)
    WINDOW w AS (PARTITION BY m.conversation_id ORDER BY m.ts, m.id)
), waits AS (
    SELECT min(ts) AS started, reply_ts
      FROM timeline
     WHERE direction = 'in'
       AND reply_ts IS NOT NULL
       AND (previous_ts IS NULL OR ts - previous_ts >= make_interval(secs => $3))
     GROUP BY conversation_id, reply_ts
)
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM reply_ts - started))
  FROM waits
 WHERE started >= $2
"""


class PgResponseTimeStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def median_first_response(
        self, company_id: int, *, since: dt.datetime, silence_s: float
    ) -> float | None:
        async with self._db.acquire() as conn:
            median = await conn.fetchval(_MEDIAN_FIRST_RESPONSE, company_id, since, silence_s)
        return None if median is None else float(median)
