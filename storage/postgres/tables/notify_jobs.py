"""The ``notify_jobs`` table: the notification cascade's durable queue.

A job is one step of the cascade (a web push, one email) for one
(conversation, party, channel), due at a time; the shape and the rules are
in migration 0004 and :mod:`storage.postgres.notify`. A pending job that is
leased when more is scheduled remembers it (``rerun_due_at``), and finishing
it queues the follow-up in the same statement (:func:`finish`). The due
times of new jobs respect the quiet period after the last sending, read from
``notify_sent`` (:mod:`.notify_sent`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import asyncpg

from storage.models import Channel, NotifyJob, Party, StepDue
from storage.postgres import packed
from storage.postgres.pool import Conn

JOB_COLUMNS = "id, conversation_id, party, channel, due_at, attempts"

_PENDING = "'pending'"

# The arbiter of schedule() and of follow-ups: the partial unique index
# notify_jobs_pending (its WHERE clause must be repeated for the inference).
_ON_PENDING_CONFLICT = f"ON CONFLICT (conversation_id, party, channel) WHERE state = {_PENDING}"

#: Parameters of :func:`schedule_cte`: one packed column (:mod:`storage.postgres.packed`)
#: per field of storage.models.StepDue.
_SCHEDULE_TYPES = ("bigint", "text", "text", "bigint", "float8", "text")
SCHEDULE_PARAMETERS = len(_SCHEDULE_TYPES)


def schedule_cte(first: int, inserted: str) -> str:
    """``steps AS (INSERT ...)``: the steps to schedule, parameters ``$first`` on.

    ``inserted`` names a CTE of the same statement returning the
    ``stanza_id`` of the messages it archived: a step whose ``written``
    message is not among them (a duplicate) is skipped. GROUP BY: a triple
    given twice gets one job, due at the earliest time (ON CONFLICT DO UPDATE
    cannot touch one row twice in a statement); ORDER BY takes the rows' locks
    in one order for every process. The JOIN skips conversations deleted
    meanwhile. On conflict with a pending job nothing changes unless a
    process holds it (leased_until set): then the job keeps its due time and
    lease too, and records the follow-up (see _FINISH).
    """
    return f"""steps AS (
        INSERT INTO notify_jobs AS j (conversation_id, party, channel, due_at, quiet_s)
        SELECT n.conversation_id, n.party, n.channel,
               greatest(n.due_at, s.sent_at + make_interval(secs => n.quiet_s)), n.quiet_s
          FROM (SELECT u.conversation_id, u.party, u.channel,
                       min({packed.moment("u.due_at")}) AS due_at, max(u.quiet_s) AS quiet_s
                  FROM unnest({packed.columns(first, _SCHEDULE_TYPES)})
                       AS u(conversation_id, party, channel, due_at, quiet_s, written)
                 WHERE u.written IS NULL OR u.written IN (SELECT stanza_id FROM {inserted})
                 GROUP BY u.conversation_id, u.party, u.channel) n
          JOIN conversations c ON c.id = n.conversation_id
          LEFT JOIN notify_sent s
                 ON s.conversation_id = n.conversation_id AND s.party = n.party
                AND s.channel = n.channel
         ORDER BY n.conversation_id, n.party, n.channel
        {_ON_PENDING_CONFLICT}
        DO UPDATE SET rerun_due_at = least(j.rerun_due_at, EXCLUDED.due_at),
                      quiet_s = EXCLUDED.quiet_s
                WHERE j.leased_until IS NOT NULL
    )"""


def schedule_columns(steps: Sequence[StepDue]) -> tuple[str, ...]:
    """The steps, one packed column per parameter of :func:`schedule_cte`."""
    return (
        packed.numbers([s.conversation_id for s in steps]),
        packed.texts([s.party.value for s in steps]),
        packed.texts([s.channel.value for s in steps]),
        packed.numbers([packed.micros(s.due_at) for s in steps]),
        packed.numbers([float(s.quiet_s) for s in steps]),
        packed.texts([s.written for s in steps]),
    )


_SCHEDULE = f"""
    WITH nothing AS (SELECT NULL::text AS stanza_id WHERE false),
    {schedule_cte(1, "nothing")}
    SELECT 1
"""

# SKIP LOCKED: concurrent claimers take disjoint jobs without waiting; a row
# another claimer leased and committed meanwhile is re-checked against the
# lease condition and dropped.
_CLAIM = f"""
    WITH due AS (
        SELECT id FROM notify_jobs
         WHERE state = {_PENDING} AND due_at <= $1
           AND (leased_until IS NULL OR leased_until < $1)
         ORDER BY due_at, id
         LIMIT $2
         FOR UPDATE SKIP LOCKED
    )
    UPDATE notify_jobs j SET leased_until = $1 + make_interval(secs => $3)
      FROM due WHERE j.id = due.id
    RETURNING j.id, j.conversation_id, j.party, j.channel, j.due_at, j.attempts
"""

# Finish a pending job: $2 state, $3 error (NULL keeps the last one), $4 added
# to attempts. If schedule() was called while it was leased, the follow-up
# job is queued by the same statement, due at the earliest requested time but
# not before the quiet period after the last sending (which sent() records
# just before). The INSERT reads the UPDATE's output, so the finished row has
# left the unique index before the new one is checked against it. A job that
# is no longer pending (finished by a process whose lease had run out) is
# left alone.
_FINISH = f"""
    WITH finished AS (
        UPDATE notify_jobs
           SET state = $2, last_error = coalesce($3, last_error), attempts = attempts + $4,
               finished_at = now(), leased_until = NULL
         WHERE id = $1 AND state = {_PENDING}
        RETURNING conversation_id, party, channel, rerun_due_at, quiet_s
    )
    INSERT INTO notify_jobs (conversation_id, party, channel, due_at, quiet_s)
    SELECT f.conversation_id, f.party, f.channel,
           greatest(f.rerun_due_at, s.sent_at + make_interval(secs => f.quiet_s)), f.quiet_s
      FROM finished f
      LEFT JOIN notify_sent s
             ON s.conversation_id = f.conversation_id AND s.party = f.party
            AND s.channel = f.channel
     WHERE f.rerun_due_at IS NOT NULL
    {_ON_PENDING_CONFLICT} DO NOTHING
"""

# Pending again later; the run after the delay reads unseen() anew, which
# covers whatever was scheduled while this one was leased.
_RETRY = f"""
    UPDATE notify_jobs
       SET due_at = now() + make_interval(secs => $2), attempts = attempts + 1,
           leased_until = NULL, last_error = $3, rerun_due_at = NULL
     WHERE id = $1 AND state = {_PENDING}
"""

_POSTPONE = f"""
    UPDATE notify_jobs SET due_at = $2, leased_until = NULL, rerun_due_at = NULL
     WHERE id = $1 AND state = {_PENDING}
"""


def job_from_row(row: asyncpg.Record) -> NotifyJob:
    return NotifyJob(
        id=row["id"],
        conversation_id=row["conversation_id"],
        party=Party(row["party"]),
        channel=Channel(row["channel"]),
        due_at=row["due_at"],
        attempts=row["attempts"],
    )


async def schedule(conn: Conn, steps: Sequence[StepDue]) -> None:
    """The steps alone (a batch's archive statement schedules its own, see
    :mod:`.messages`); conversations that do not exist are skipped.

    Raises asyncpg.ForeignKeyViolationError for a conversation deleted while
    the statement ran (running it again skips it).
    """
    await conn.execute(_SCHEDULE, *schedule_columns(steps))


async def claim(conn: Conn, now: dt.datetime, limit: int, lease_s: float) -> list[NotifyJob]:
    """Oldest due first; the lease ends ``lease_s`` seconds after ``now``."""
    rows = await conn.fetch(_CLAIM, now, limit, float(lease_s))
    return sorted((job_from_row(row) for row in rows), key=lambda j: (j.due_at, j.id))


async def finish(conn: Conn, job_id: int, state: str, error: str | None, failed: int) -> None:
    """End a pending job as ``state`` (``error`` None keeps the last one), adding
    ``failed`` to its attempts, and queue its follow-up (see _FINISH)."""
    await conn.execute(_FINISH, job_id, state, error, failed)


async def retry(conn: Conn, job_id: int, delay_s: float, error: str) -> None:
    await conn.execute(_RETRY, job_id, float(delay_s), error)


async def postpone(conn: Conn, job_id: int, due_at: dt.datetime) -> None:
    await conn.execute(_POSTPONE, job_id, due_at)
