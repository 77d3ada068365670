"""The ``messages`` table: the archive, the retransmission dedup and the pending queue.

This is the hot path. A whole batch is archived by one INSERT ... SELECT FROM
unnest(...) statement (atomic by itself, so no BEGIN/COMMIT round trips);
only when some rows were skipped as duplicates does a second, read-only
query fetch the stanza-id of their first copies. Column arrays are sent as
parameters, so no SQL is built per batch and asyncpg reuses one prepared
statement.

Pending messages (customer messages that arrived while no agent was online)
are claimed with FOR UPDATE SKIP LOCKED, so two component processes never
deliver the same one.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from storage.errors import NotFound
from storage.models import ArchivedMessage, ArchiveResult, Direction, NewMessage
from storage.postgres.pool import Conn, Database

COLUMNS = "id, conversation_id, direction, sender_jid, body, stanza_id, client_id, ts"


def from_row(row: asyncpg.Record) -> ArchivedMessage:
    return ArchivedMessage(
        id=row["id"],
        conversation_id=row["conversation_id"],
        direction=Direction(row["direction"]),
        sender_jid=row["sender_jid"],
        body=row["body"],
        stanza_id=row["stanza_id"],
        client_id=row["client_id"],
        ts=row["ts"],
    )


# ORDER BY ord: rows are inserted (and numbered) in batch order, so when two
# copies of a message are in one batch the first one is kept.
# ON CONFLICT without a target covers both unique indexes: the client-key one
# (a retransmission) and stanza_id (the same batch retried after its commit
# was lost in transit: those rows are already archived).
_INSERT = """
    INSERT INTO messages (conversation_id, direction, sender_jid, body, stanza_id,
                          client_id, client_key, pending, ts)
    SELECT conversation_id, direction, sender_jid, body, stanza_id,
           client_id, client_key, pending, ts
      FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],
                  $6::text[], $7::text[], $8::boolean[], $9::timestamptz[])
           WITH ORDINALITY AS m(conversation_id, direction, sender_jid, body, stanza_id,
                                client_id, client_key, pending, ts, ord)
     ORDER BY ord
    ON CONFLICT DO NOTHING
    RETURNING stanza_id
"""

# The archived copy of each skipped message, in the order given. The last
# fallback (its own stanza-id) only serves if the copy vanished since the
# INSERT, i.e. its conversation was deleted meanwhile.
_FIRST_COPIES = """
    SELECT coalesce(
               (SELECT m.stanza_id FROM messages m
                 WHERE u.client_key IS NOT NULL AND m.conversation_id = u.conversation_id
                   AND m.sender_jid = u.sender_jid AND m.client_key = u.client_key),
               (SELECT m.stanza_id FROM messages m WHERE m.stanza_id = u.stanza_id),
               u.stanza_id) AS stanza_id
      FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[])
           WITH ORDINALITY AS u(conversation_id, sender_jid, client_key, stanza_id, ord)
     ORDER BY ord
"""


async def insert_batch(conn: Conn, messages: Sequence[NewMessage]) -> set[str]:
    """Insert what is not a duplicate; return the stanza-ids actually inserted."""
    try:
        rows = await conn.fetch(
            _INSERT,
            [m.conversation_id for m in messages],
            [m.direction.value for m in messages],
            [m.sender_jid for m in messages],
            [m.body for m in messages],
            [m.stanza_id for m in messages],
            [m.client_id for m in messages],
            [m.client_key for m in messages],
            [m.pending for m in messages],
            [m.ts for m in messages],
        )
    except asyncpg.ForeignKeyViolationError as exc:
        raise NotFound(f"conversation does not exist: {exc.detail}") from exc
    return {row["stanza_id"] for row in rows}


async def first_copies(conn: Conn, messages: Sequence[NewMessage]) -> list[str]:
    """The stanza-id under which each of these (skipped) messages is archived."""
    rows = await conn.fetch(
        _FIRST_COPIES,
        [m.conversation_id for m in messages],
        [m.sender_jid for m in messages],
        [m.client_key for m in messages],
        [m.stanza_id for m in messages],
    )
    return [row["stanza_id"] for row in rows]


async def claim_pending(
    conn: Conn, company_ids: Sequence[int], limit: int
) -> list[ArchivedMessage]:
    # One statement: the rows are locked (SKIP LOCKED: another claimer's rows
    # are passed over, not waited for) and marked in the same step. A row
    # claimed and committed by someone else after this statement started is
    # re-checked against "pending" and dropped.
    rows = await conn.fetch(
        """
        WITH taken AS (
            SELECT m.id FROM messages m JOIN conversations c ON c.id = m.conversation_id
             WHERE m.pending AND c.company_id = ANY($1::bigint[])
             ORDER BY m.id
             LIMIT $2
             FOR UPDATE OF m SKIP LOCKED
        )
        UPDATE messages m SET pending = false FROM taken WHERE m.id = taken.id
        RETURNING m.id, m.conversation_id, m.direction, m.sender_jid, m.body,
                  m.stanza_id, m.client_id, m.ts
        """,
        list(company_ids),
        limit,
    )
    return sorted((from_row(row) for row in rows), key=lambda message: message.id)


async def mark_pending(conn: Conn, stanza_ids: Sequence[str]) -> None:
    """Make these customer messages pending (again); others are left alone."""
    await conn.execute(
        """
        UPDATE messages SET pending = true
         WHERE stanza_id = ANY($1::text[]) AND direction = 'in' AND NOT pending
        """,
        list(stanza_ids),
    )


async def newest(conn: Conn, conversation_id: int, limit: int) -> list[ArchivedMessage]:
    """The newest ``limit`` messages, oldest first."""
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM messages WHERE conversation_id = $1 ORDER BY id DESC LIMIT $2",
        conversation_id,
        limit,
    )
    return [from_row(row) for row in reversed(rows)]


class PgArchiveStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def append_batch(self, messages: Sequence[NewMessage]) -> list[ArchiveResult]:
        """Archive a batch; see ArchiveStore. Raises NotFound for an unknown conversation."""
        if not messages:
            return []
        async with self._db.acquire() as conn:
            inserted = await insert_batch(conn, messages)
            results: list[ArchiveResult | None] = []
            skipped: list[int] = []
            for index, message in enumerate(messages):
                if message.stanza_id in inserted:
                    # discard: should a stanza-id repeat in the batch, only its
                    # first occurrence was inserted.
                    inserted.discard(message.stanza_id)
                    results.append(ArchiveResult(stanza_id=message.stanza_id, duplicate=False))
                else:
                    results.append(None)
                    skipped.append(index)
            if skipped:
                originals = await first_copies(conn, [messages[i] for i in skipped])
                for index, stanza_id in zip(skipped, originals, strict=True):
                    results[index] = ArchiveResult(stanza_id=stanza_id, duplicate=True)
        return [result for result in results if result is not None]

    async def claim_pending(self, company_ids: Sequence[int], limit: int) -> list[ArchivedMessage]:
        if not company_ids:
            return []
        async with self._db.acquire() as conn:
            return await claim_pending(conn, company_ids, limit)

    async def requeue(self, stanza_ids: Sequence[str]) -> None:
        if not stanza_ids:
            return
        async with self._db.acquire() as conn:
            await mark_pending(conn, stanza_ids)

    async def history(self, conversation_id: int, limit: int) -> list[ArchivedMessage]:
        async with self._db.acquire() as conn:
            return await newest(conn, conversation_id, limit)
