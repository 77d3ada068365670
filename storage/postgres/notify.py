"""NotifyStore on PostgreSQL: the notification cascade's jobs and marks.

Composed from :mod:`.tables.notify_jobs`, :mod:`.tables.notify_seen` and
:mod:`.tables.notify_sent`.

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
  follow-up job is queued (:func:`.tables.notify_jobs.finish`), so a message archived after the
  worker read :meth:`~PgNotifyStore.unseen` is never left without a job.
* :meth:`~PgNotifyStore.claim` leases due jobs with FOR UPDATE SKIP LOCKED,
  like the other queues; the lease is measured on the caller's clock
  (``now``), the other timestamps on PostgreSQL's.
* Marks only move forward. ``notify_seen`` says what a party read on XMPP,
  ``notify_sent`` what each channel already sent and when.

Jobs and marks of a deleted conversation go with it (ON DELETE CASCADE).
:meth:`~PgNotifyStore.schedule` and :meth:`~PgNotifyStore.mark_seen` skip
conversations that do not exist (deleted while the batch was routed). A
routed batch records its marks and steps in its own archive statement
(:class:`storage.models.BatchExtras`, :mod:`.tables.messages`), with the
same SQL; these two record them alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence

import asyncpg

from storage.errors import NotFound
from storage.models import Channel, NotifyJob, Party, ReadMark, StepDue, Unseen
from storage.postgres.pool import Database
from storage.postgres.tables import conversations, notify_jobs, notify_seen, notify_sent

#: The most messages :meth:`PgNotifyStore.unseen` returns: the newest ones
#: (oldest first). An email or a push shows at most that many; marking the
#: newest as notified covers the older ones too.
UNSEEN_LIMIT = 50


async def _skipping_deleted(run: Callable[[], Awaitable[None]]) -> None:
    """Run an insert that skips deleted conversations by joining them.

    A conversation deleted by a transaction that commits while the statement
    runs still fails its foreign key; the second run no longer sees it.
    """
    try:
        await run()
    except asyncpg.ForeignKeyViolationError:
        await run()


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
            steps = [StepDue(c, party, channel, due, quiet_s) for c, party, channel, due in jobs]
            await _skipping_deleted(lambda: notify_jobs.schedule(conn, steps))

    async def claim(self, now: dt.datetime, limit: int, lease_s: float) -> list[NotifyJob]:
        """Oldest due first; the lease ends ``lease_s`` seconds after ``now``."""
        if limit <= 0:
            return []
        async with self._db.acquire() as conn:
            return await notify_jobs.claim(conn, now, limit, lease_s)

    async def unseen(self, job: NotifyJob) -> Unseen:
        """At most :data:`UNSEEN_LIMIT` messages, the newest, oldest first."""
        async with self._db.acquire() as conn:
            found = await conversations.by_ids(conn, [job.conversation_id])
            if not found:
                raise NotFound(f"conversation {job.conversation_id} does not exist")
            messages = await notify_seen.unseen(
                conn, job.conversation_id, job.party, job.channel, UNSEEN_LIMIT
            )
        return Unseen(conversation=found[0], messages=messages)

    async def sent(self, job_id: int, up_to_message_id: int) -> None:
        """Marks (notified up to, sent now) and the job's end in one transaction.

        The marks are recorded even if the job is no longer pending (another
        process took it over when its lease ran out): the sending happened.
        Nothing happens for an unknown job (its conversation was deleted).
        """
        try:
            async with self._db.transaction() as conn:
                await notify_sent.record_sent(conn, job_id, up_to_message_id)
                await notify_jobs.finish(conn, job_id, "done", None, 0)
        except asyncpg.ForeignKeyViolationError:
            return  # the conversation was deleted meanwhile: nothing left to mark

    async def cancel(self, job_id: int, reason: str) -> None:
        async with self._db.acquire() as conn:
            await notify_jobs.finish(conn, job_id, "cancelled", reason, 0)

    async def retry(self, job_id: int, delay_s: float, error: str) -> None:
        async with self._db.acquire() as conn:
            await notify_jobs.retry(conn, job_id, delay_s, error)

    async def postpone(self, job_id: int, due_at: dt.datetime) -> None:
        async with self._db.acquire() as conn:
            await notify_jobs.postpone(conn, job_id, due_at)

    async def fail(self, job_id: int, error: str) -> None:
        """Failed for good; counts as one more failed attempt."""
        async with self._db.acquire() as conn:
            await notify_jobs.finish(conn, job_id, "failed", error, 1)

    async def mark_seen(self, marks: Sequence[tuple[int, Party]]) -> None:
        """One statement; conversations without messages (or deleted) are skipped."""
        if not marks:
            return
        async with self._db.acquire() as conn:
            read = [ReadMark(c, party) for c, party in marks]
            await _skipping_deleted(lambda: notify_seen.mark_seen(conn, read))
