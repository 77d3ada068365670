"""The ``notify_jobs``, ``notify_seen`` and ``notify_sent`` tables: the cascade's store.

A job is one step of the notification cascade (a web push, one email) for one
(conversation, party, channel), due at a time. The shape and the rules are in
migration 0004; in short:

* :meth:`PgNotifyStore.schedule` runs once per batch of routed messages: one
  ``INSERT ... SELECT FROM unnest(...) ON CONFLICT`` statement against the
  partial unique index of pending jobs. A triple that already has a pending
  job keeps it and its due time (the batching); a new job is due no earlier
  than the quiet period after the triple's last sending (``notify_sent``).
  A pending job that is leased (a process is working on it) is not changed
  either, but remembers that more was scheduled: when it finishes, a
  follow-up job is queued (``_FINISH``), so a message archived after the
  worker read :meth:`~PgNotifyStore.unseen` is never left without a job.
* :meth:`~PgNotifyStore.claim` leases due jobs with FOR UPDATE SKIP LOCKED,
  like the other queues; the lease is measured on the caller's clock
  (``now``), the other timestamps on PostgreSQL's.
* Marks only move forward. ``notify_seen`` says what a party read on XMPP,
  ``notify_sent`` what each channel already sent and when.

Jobs and marks of a deleted conversation go with it (ON DELETE CASCADE).
:meth:`~PgNotifyStore.schedule` and :meth:`~PgNotifyStore.mark_seen` skip
conversations that do not exist (deleted while the batch was routed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import asyncpg

from storage.errors import NotFound
from storage.models import Channel, NotifyJob, Party, Unseen
from storage.postgres import conversations, messages
from storage.postgres.pool import Conn, Database

#: The most messages :meth:`PgNotifyStore.unseen` returns: the newest ones
#: (oldest first). An email or a push shows at most that many; marking the
#: newest as notified covers the older ones too.
UNSEEN_LIMIT = 50

JOB_COLUMNS = "id, conversation_id, party, channel, due_at, attempts"

_PENDING = "'pending'"

# The arbiter of schedule() and of follow-ups: the partial unique index
# notify_jobs_pending (its WHERE clause must be repeated for the inference).
_ON_PENDING_CONFLICT = f"ON CONFLICT (conversation_id, party, channel) WHERE state = {_PENDING}"

# $1..$4: one array per column of the jobs; $5: the quiet period (seconds).
# GROUP BY: a triple given twice gets one job, due at the earliest time
# (ON CONFLICT DO UPDATE cannot touch one row twice in a statement); ORDER BY
# takes the rows' locks in one order for every process. The JOIN skips
# conversations deleted meanwhile. On conflict with a pending job nothing
# changes unless a process holds it (leased_until set): then the job keeps
# its due time and lease too, and records the follow-up (see _FINISH).
_SCHEDULE = f"""
    INSERT INTO notify_jobs AS j (conversation_id, party, channel, due_at, quiet_s)
    SELECT n.conversation_id, n.party, n.channel,
           greatest(n.due_at, s.sent_at + make_interval(secs => $5::float8)), $5::float8
      FROM (SELECT u.conversation_id, u.party, u.channel, min(u.due_at) AS due_at
              FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[])
                   AS u(conversation_id, party, channel, due_at)
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

# $1 conversation, $2 direction, $3 party, $4 channel, $5 limit. Newest first
# here (the caller reverses): both walk the messages (conversation_id, id) index.
_UNSEEN = f"""
    SELECT {messages.COLUMNS} FROM messages
     WHERE conversation_id = $1 AND direction = $2
       AND id > greatest(
           coalesce((SELECT seen_message_id FROM notify_seen
                      WHERE conversation_id = $1 AND party = $3), 0),
           coalesce((SELECT notified_id FROM notify_sent
                      WHERE conversation_id = $1 AND party = $3 AND channel = $4), 0))
     ORDER BY id DESC
     LIMIT $5
"""

# The job's triple notified up to $2, now.
_RECORD_SENT = """
    INSERT INTO notify_sent (conversation_id, party, channel, notified_id, sent_at)
    SELECT conversation_id, party, channel, $2, now() FROM notify_jobs WHERE id = $1
    ON CONFLICT (conversation_id, party, channel) DO UPDATE
       SET notified_id = greatest(notify_sent.notified_id, EXCLUDED.notified_id),
           sent_at = EXCLUDED.sent_at
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

# max(id) per conversation walks the messages (conversation_id, id) index
# backwards; a conversation without messages (or deleted) has nothing to mark.
# DISTINCT: ON CONFLICT DO UPDATE cannot touch one row twice; ORDER BY: one
# lock order. The last WHERE spares a write when the mark would not move.
_MARK_SEEN = """
    INSERT INTO notify_seen (conversation_id, party, seen_message_id)
    SELECT k.conversation_id, k.party, last.id
      FROM (SELECT DISTINCT conversation_id, party
              FROM unnest($1::bigint[], $2::text[]) AS u(conversation_id, party)) k
      CROSS JOIN LATERAL (
          SELECT max(m.id) AS id FROM messages m WHERE m.conversation_id = k.conversation_id
      ) last
     WHERE last.id IS NOT NULL
     ORDER BY k.conversation_id, k.party
    ON CONFLICT (conversation_id, party) DO UPDATE
       SET seen_message_id = EXCLUDED.seen_message_id, updated_at = now()
     WHERE notify_seen.seen_message_id < EXCLUDED.seen_message_id
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


async def _execute_skipping_deleted(conn: Conn, sql: str, *args: object) -> None:
    """Run an insert that skips deleted conversations by joining them.

    A conversation deleted by a transaction that commits while the statement
    runs still fails its foreign key; the second run no longer sees it.
    """
    try:
        await conn.execute(sql, *args)
    except asyncpg.ForeignKeyViolationError:
        await conn.execute(sql, *args)


class PgNotifyStore:
    """See :class:`storage.protocols.NotifyStore` and the module's docstring."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def schedule(
        self, jobs: Sequence[tuple[int, Party, Channel, dt.datetime]], quiet_s: float
    ) -> None:
        """One statement for the whole batch; unknown conversations are skipped."""
        if not jobs:
            return
        async with self._db.acquire() as conn:
            await _execute_skipping_deleted(
                conn,
                _SCHEDULE,
                [conversation_id for conversation_id, _, _, _ in jobs],
                [party.value for _, party, _, _ in jobs],
                [channel.value for _, _, channel, _ in jobs],
                [due_at for _, _, _, due_at in jobs],
                float(quiet_s),
            )

    async def claim(self, now: dt.datetime, limit: int, lease_s: float) -> list[NotifyJob]:
        """Oldest due first; the lease ends ``lease_s`` seconds after ``now``."""
        if limit <= 0:
            return []
        async with self._db.acquire() as conn:
            rows = await conn.fetch(_CLAIM, now, limit, float(lease_s))
        return sorted((job_from_row(row) for row in rows), key=lambda j: (j.due_at, j.id))

    async def unseen(self, job: NotifyJob) -> Unseen:
        """At most :data:`UNSEEN_LIMIT` messages, the newest, oldest first."""
        async with self._db.acquire() as conn:
            found = await conversations.by_ids(conn, [job.conversation_id])
            if not found:
                raise NotFound(f"conversation {job.conversation_id} does not exist")
            rows = await conn.fetch(
                _UNSEEN,
                job.conversation_id,
                messages.direction(job.party.other),
                job.party.value,
                job.channel.value,
                UNSEEN_LIMIT,
            )
        return Unseen(
            conversation=found[0], messages=[messages.from_row(r) for r in reversed(rows)]
        )

    async def sent(self, job_id: int, up_to_message_id: int) -> None:
        """Marks (notified up to, sent now) and the job's end in one transaction.

        The marks are recorded even if the job is no longer pending (another
        process took it over when its lease ran out): the sending happened.
        Nothing happens for an unknown job (its conversation was deleted).
        """
        try:
            async with self._db.transaction() as conn:
                await conn.execute(_RECORD_SENT, job_id, up_to_message_id)
                await conn.execute(_FINISH, job_id, "done", None, 0)
        except asyncpg.ForeignKeyViolationError:
            return  # the conversation was deleted meanwhile: nothing left to mark

    async def cancel(self, job_id: int, reason: str) -> None:
        async with self._db.acquire() as conn:
            await conn.execute(_FINISH, job_id, "cancelled", reason, 0)

    async def retry(self, job_id: int, delay_s: float, error: str) -> None:
        async with self._db.acquire() as conn:
            await conn.execute(_RETRY, job_id, float(delay_s), error)

    async def postpone(self, job_id: int, due_at: dt.datetime) -> None:
        async with self._db.acquire() as conn:
            await conn.execute(_POSTPONE, job_id, due_at)

    async def fail(self, job_id: int, error: str) -> None:
        """Failed for good; counts as one more failed attempt."""
        async with self._db.acquire() as conn:
            await conn.execute(_FINISH, job_id, "failed", error, 1)

    async def mark_seen(self, marks: Sequence[tuple[int, Party]]) -> None:
        """One statement; conversations without messages (or deleted) are skipped."""
        if not marks:
            return
        async with self._db.acquire() as conn:
            await _execute_skipping_deleted(
                conn,
                _MARK_SEEN,
                [conversation_id for conversation_id, _ in marks],
                [party.value for _, party in marks],
            )
