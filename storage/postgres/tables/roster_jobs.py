"""The ``roster_jobs`` table: a durable queue of ejabberd roster edits.

Jobs are queued by triggers on ``agents`` and ``companies`` (migrations 0001
and 0011), never by Python code, so that every way of changing the directory
queues them; :func:`queue_adds` only queues them again. Workers lease jobs
for :data:`LEASE`; a worker that dies lets its lease expire and the job
comes back. The jobs of one roster item (company, agent)
are handed out in order, one at a time, so an "add" can never overtake the
"remove" queued after it.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from storage.models import RosterJob, RosterOp
from storage.postgres.pool import Conn
from storage.postgres.tables.company_imports import BULK_TIMEOUT
from storage.postgres.tables.company_imports import TABLE as IMPORTS

#: How long a claimed job stays invisible to other workers: far longer than
#: one call to ejabberd's API, short enough that a crashed worker's jobs
#: come back soon.
LEASE = "60 seconds"


def from_row(row: asyncpg.Record) -> RosterJob:
    return RosterJob(
        id=row["id"],
        op=RosterOp(row["op"]),
        company_slug=row["company_slug"],
        company_name=row["company_name"],
        agent_jid=row["agent_jid"],
        attempts=row["attempts"],
    )


async def claim(conn: Conn, limit: int) -> list[RosterJob]:
    # SKIP LOCKED: concurrent claimers take disjoint jobs without waiting.
    # NOT EXISTS: only the oldest job of a roster item is claimable, even
    # while it is leased, so one item's jobs run in the order they were queued.
    rows = await conn.fetch(
        f"""
        WITH due AS (
            SELECT j.id FROM roster_jobs j
             WHERE j.next_attempt_at <= now()
               AND (j.leased_until IS NULL OR j.leased_until <= now())
               AND NOT EXISTS (
                   SELECT 1 FROM roster_jobs older
                    WHERE older.company_slug = j.company_slug
                      AND older.agent_jid = j.agent_jid
                      AND older.id < j.id)
             ORDER BY j.next_attempt_at, j.id
             LIMIT $1
             FOR UPDATE SKIP LOCKED
        )
        UPDATE roster_jobs j
           SET leased_until = now() + interval '{LEASE}', attempts = j.attempts + 1
          FROM due WHERE j.id = due.id
        RETURNING j.id, j.op, j.company_slug, j.company_name, j.agent_jid, j.attempts
        """,
        limit,
    )
    return sorted((from_row(row) for row in rows), key=lambda job: job.id)


async def delete(conn: Conn, job_id: int) -> None:
    await conn.execute("DELETE FROM roster_jobs WHERE id = $1", job_id)


async def postpone(conn: Conn, job_id: int, delay_s: float, error: str) -> None:
    await conn.execute(
        """
        UPDATE roster_jobs
           SET next_attempt_at = now() + make_interval(secs => $2),
               last_error = $3, leased_until = NULL
         WHERE id = $1
        """,
        job_id,
        delay_s,
        error,
    )


#: Queue an "add" job for every agent of the companies ``{companies}`` selects,
#: and for its inbox (migration 0019: its newest unresolved conversations).
_QUEUE_ADDS = """
    WITH picked AS (
        SELECT a.company_id, a.jid, c.slug, c.name
          FROM agents a JOIN companies c ON c.id = a.company_id
         WHERE {companies}
    )
    SELECT (SELECT roster_jobs_queue_many('add', array_agg(slug), array_agg(name), array_agg(jid))
              FROM picked)
         + (SELECT coalesce(roster_jobs_queue_inbox(array_agg(company_id), array_agg(jid)), 0)
              FROM picked)
"""


async def queue_adds(conn: Conn, slugs: Sequence[str] | None) -> int:
    """Queue an "add" job for every agent of these companies (of all: None), and
    for the conversations of its inbox.

    For when ejabberd's rosters may have lost what the directory says (an
    ejabberd restored or replaced, a directory re-imported); adding a roster
    item that exists already only rewrites it.
    """
    count: int = await conn.fetchval(
        _QUEUE_ADDS.format(companies="$1::text[] IS NULL OR c.slug = ANY($1::text[])"),
        None if slugs is None else list(slugs),
    )
    return count


async def queue_imported_adds(conn: Conn) -> int:
    """:func:`queue_adds` for the companies of ``company_imports``."""
    count: int = await conn.fetchval(
        _QUEUE_ADDS.format(companies=f"c.slug IN (SELECT slug FROM {IMPORTS})"),
        timeout=BULK_TIMEOUT,
    )
    return count
