"""The ``messages`` table: the archive, the retransmission dedup and the pending queue.

This is the hot path. A whole batch is archived by one INSERT ... SELECT FROM
unnest(...) statement (atomic by itself, so no BEGIN/COMMIT round trips);
only when some rows were skipped as duplicates does a second, read-only
query fetch the stanza-id of their first copies. Column arrays are sent as
parameters, so no SQL is built per batch and asyncpg reuses one prepared
statement.

Pending messages (customer messages that arrived while no agent was online)
are claimed with FOR UPDATE SKIP LOCKED, so two component processes never
deliver the same one. Both statements that hand messages over for delivery
(archiving a batch, claiming pending messages) record them in ``deliveries``
in the same statement, and so does :func:`insert_delivered`, which archives
the messages the component writes on a customer's behalf (requests to several
companies and their notices). ``thread`` and ``payload`` travel with a
message wherever it is read back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import asyncpg

from storage.errors import Conflict, NotFound
from storage.models import ArchivedMessage, Delivery, Direction, NewMessage
from storage.postgres.pool import Conn

COLUMNS = (
    "id, conversation_id, direction, sender_jid, body, stanza_id, client_id, ts, thread, payload"
)
#: The same columns, qualified with the alias ``m`` (for joins and RETURNING).
M_COLUMNS = ", ".join(f"m.{column}" for column in COLUMNS.split(", "))


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
        thread=row["thread"],
        payload=row["payload"],
    )


# The messages of one batch, from one array per column (see _arrays), $1 to $11.
_INSERT_ROWS = """
        INSERT INTO messages (conversation_id, direction, sender_jid, body, stanza_id,
                              client_id, client_key, pending, ts, thread, payload)
        SELECT conversation_id, direction, sender_jid, body, stanza_id,
               client_id, client_key, pending, ts, thread, payload
          FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],
                      $6::text[], $7::text[], $8::boolean[], $9::timestamptz[],
                      $10::text[], $11::text[])
               WITH ORDINALITY AS m(conversation_id, direction, sender_jid, body, stanza_id,
                                    client_id, client_key, pending, ts, thread, payload, ord)
         ORDER BY ord"""

# ORDER BY ord: rows are inserted (and numbered) in batch order, so when two
# copies of a message are in one batch the first one is kept.
# ON CONFLICT without a target covers both unique indexes: the client-key one
# (a retransmission) and stanza_id (the same batch retried after its commit
# was lost in transit: those rows are already archived).
# The new rows that are not pending are recorded as one delivery in the same
# statement (see deliveries.py); every returned row carries its id. Earlier
# deliveries that were confirmed meanwhile are deleted by the same statement,
# so a busy component commits once per batch, not twice.
_INSERT = f"""
    WITH ins AS ({_INSERT_ROWS}
        ON CONFLICT DO NOTHING
        RETURNING id, stanza_id, pending
    ), delivery AS (
        INSERT INTO deliveries (message_ids)
        SELECT array_agg(id ORDER BY id) FROM ins WHERE NOT pending HAVING count(*) > 0
        RETURNING id
    ), confirmed AS (
        DELETE FROM deliveries WHERE id = ANY($12::bigint[])
    )
    SELECT ins.stanza_id, (SELECT id FROM delivery) AS delivery_id FROM ins
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


async def insert_batch(
    conn: Conn, messages: Sequence[NewMessage], confirmed: Sequence[int]
) -> tuple[set[str], int | None]:
    """Insert what is not a duplicate and forget the ``confirmed`` deliveries.

    Returns the stanza-ids inserted and the new delivery's id (or None).
    """
    try:
        rows = await conn.fetch(_INSERT, *_arrays(messages), list(confirmed))
    except asyncpg.ForeignKeyViolationError as exc:
        raise NotFound(f"conversation does not exist: {exc.detail}") from exc
    delivery_id = rows[0]["delivery_id"] if rows else None
    return {row["stanza_id"] for row in rows}, delivery_id


def _arrays(messages: Sequence[NewMessage]) -> tuple[list[Any], ...]:
    """The messages as one list per column, in the order of _INSERT_ROWS' unnest()."""
    return (
        [m.conversation_id for m in messages],
        [m.direction.value for m in messages],
        [m.sender_jid for m in messages],
        [m.body for m in messages],
        [m.stanza_id for m in messages],
        [m.client_id for m in messages],
        [m.client_key for m in messages],
        [m.pending for m in messages],
        [m.ts for m in messages],
        [m.thread for m in messages],
        [m.payload for m in messages],
    )


# For messages the component writes itself (requests and their notices):
# every row is new (fresh stanza-ids, no client key), none is pending, and
# all are handed over for delivery under one record, as by _INSERT.
_INSERT_DELIVERED = f"""
    WITH ins AS ({_INSERT_ROWS}
        RETURNING {COLUMNS}
    ), delivery AS (
        INSERT INTO deliveries (message_ids)
        SELECT array_agg(id ORDER BY id) FROM ins
        RETURNING id
    )
    SELECT ins.*, (SELECT id FROM delivery) AS delivery_id FROM ins ORDER BY ins.id
"""


async def insert_delivered(conn: Conn, messages: Sequence[NewMessage]) -> Delivery:
    """Archive new, not pending messages under one new delivery record.

    Unlike :func:`insert_batch` nothing is deduplicated: a stanza-id that is
    already archived raises Conflict. The delivery lists the messages in the
    order given. Raises NotFound for an unknown conversation.
    """
    if not messages or any(m.pending for m in messages):
        raise ValueError("insert_delivered takes one or more messages, none pending")
    try:
        rows = await conn.fetch(_INSERT_DELIVERED, *_arrays(messages))
    except asyncpg.ForeignKeyViolationError as exc:
        raise NotFound(f"conversation does not exist: {exc.detail}") from exc
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"message already archived: {exc.detail}") from exc
    by_stanza_id = {row["stanza_id"]: from_row(row) for row in rows}
    return Delivery(rows[0]["delivery_id"], [by_stanza_id[m.stanza_id] for m in messages])


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


async def claim_pending(conn: Conn, company_ids: Sequence[int], limit: int) -> Delivery | None:
    # One statement: the rows are locked (SKIP LOCKED: another claimer's rows
    # are passed over, not waited for), marked and recorded as one delivery.
    # A row claimed and committed by someone else after this statement started
    # is re-checked against "pending" and dropped.
    rows = await conn.fetch(
        f"""
        WITH taken AS (
            SELECT m.id FROM messages m JOIN conversations c ON c.id = m.conversation_id
             WHERE m.pending AND c.company_id = ANY($1::bigint[])
             ORDER BY m.id
             LIMIT $2
             FOR UPDATE OF m SKIP LOCKED
        ), claimed AS (
            UPDATE messages m SET pending = false FROM taken WHERE m.id = taken.id
            RETURNING {M_COLUMNS}
        ), delivery AS (
            INSERT INTO deliveries (message_ids)
            SELECT array_agg(id ORDER BY id) FROM claimed HAVING count(*) > 0
            RETURNING id
        )
        SELECT claimed.*, (SELECT id FROM delivery) AS delivery_id FROM claimed
        """,
        list(company_ids),
        limit,
    )
    if not rows:
        return None
    messages = sorted((from_row(row) for row in rows), key=lambda message: message.id)
    return Delivery(rows[0]["delivery_id"], messages)


async def mark_pending(conn: Conn, stanza_ids: Sequence[str]) -> None:
    """Make these customer messages pending (again); others are left alone."""
    await conn.execute(
        """
        UPDATE messages SET pending = true
         WHERE stanza_id = ANY($1::text[]) AND direction = 'in' AND NOT pending
        """,
        list(stanza_ids),
    )


async def id_of(conn: Conn, conversation_id: int, stanza_id: str) -> int | None:
    found: int | None = await conn.fetchval(
        "SELECT id FROM messages WHERE stanza_id = $1 AND conversation_id = $2",
        stanza_id,
        conversation_id,
    )
    return found


# Oldest first, or newest first for a page that ends before a message (or
# the last page); both walk the (conversation_id, id) index. One row more than
# asked says whether the page is complete.
_PAGE_WHERE = f"""
    SELECT {COLUMNS} FROM messages
     WHERE conversation_id = $1
       AND ($2::timestamptz IS NULL OR ts >= $2)
       AND ($3::timestamptz IS NULL OR ts <= $3)
       AND ($4::bigint IS NULL OR id > $4)
       AND ($5::bigint IS NULL OR id < $5)
"""
_PAGE_FORWARD = _PAGE_WHERE + " ORDER BY id LIMIT $6"
_PAGE_BACKWARD = _PAGE_WHERE + " ORDER BY id DESC LIMIT $6"

_COUNT = """
    SELECT count(*) FROM messages
     WHERE conversation_id = $1
       AND ($2::timestamptz IS NULL OR ts >= $2)
       AND ($3::timestamptz IS NULL OR ts <= $3)
"""


async def page(
    conn: Conn,
    conversation_id: int,
    start: dt.datetime | None,
    end: dt.datetime | None,
    after_id: int | None,
    before_id: int | None,
    backwards: bool,
    limit: int,
) -> tuple[list[ArchivedMessage], bool, int]:
    """(messages oldest first, complete, count of the time-filtered archive)."""
    rows = await conn.fetch(
        _PAGE_BACKWARD if backwards else _PAGE_FORWARD,
        conversation_id,
        start,
        end,
        after_id,
        before_id,
        limit + 1,
    )
    complete = len(rows) <= limit
    found = [from_row(row) for row in rows[:limit]]
    if backwards:
        found.reverse()
    count: int = await conn.fetchval(_COUNT, conversation_id, start, end)
    return found, complete, count
