"""The ``notify_sent`` table: what each channel sent a party, up to which message, and when.

A mark only moves forward; the time of the last sending starts the quiet
period that new jobs of the same (conversation, party, channel) wait for
(:mod:`.notify_jobs`).
"""

from __future__ import annotations

from storage.postgres.pool import Conn

# The job's triple notified up to $2, now.
_RECORD_SENT = """
    INSERT INTO notify_sent (conversation_id, party, channel, notified_id, sent_at)
    SELECT conversation_id, party, channel, $2, now() FROM notify_jobs WHERE id = $1
    ON CONFLICT (conversation_id, party, channel) DO UPDATE
       SET notified_id = greatest(notify_sent.notified_id, EXCLUDED.notified_id),
           sent_at = EXCLUDED.sent_at
"""


async def record_sent(conn: Conn, job_id: int, up_to_message_id: int) -> None:
    """The job's (conversation, party, channel) notified up to this message, now.

    Raises asyncpg.ForeignKeyViolationError if the conversation was deleted.
    """
    await conn.execute(_RECORD_SENT, job_id, up_to_message_id)
