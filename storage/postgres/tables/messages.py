"""The ``messages`` table: the archive, the retransmission dedup and the pending queue.

This is the hot path. A whole batch is archived by one INSERT ... SELECT FROM
unnest(...) (:func:`insert_rows`), inside the batch statement of
:mod:`storage.postgres.batch` (atomic by itself, so no BEGIN/COMMIT round
trips); only when some rows were skipped as duplicates does a second,
read-only query (:func:`first_copies`) fetch the stanza-id of their first
copies. The columns are sent as parameters, each packed as one string
(:mod:`storage.postgres.packed`), so no SQL is built per batch and asyncpg
reuses one prepared statement.

Pending messages (customer messages that arrived while no agent was online)
are claimed with FOR UPDATE SKIP LOCKED, so two component processes never
deliver the same one. Both statements that hand messages over for delivery
(archiving a batch, claiming pending messages) record them in ``deliveries``
in the same statement, and so does :func:`insert_delivered`, which archives
the messages the component writes on a customer's behalf (requests to several
companies and their notices). ``thread`` and ``payload`` travel with a
message wherever it is read back. Every row carries its conversation's
``company_id`` (copied by the INSERT), so that a company's whole archive
reads in order from one index.

Export, the retention sweep's batched deletes and the first-response times
(:func:`median_first_response`) are at the end of the module; the XEP-0313
pages (of one conversation or of a whole company, with their filters and
XEP-0431 full-text search) and the archive's ends are in
:mod:`.message_pages`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import asyncpg

from storage.errors import Conflict, NotFound
from storage.models import ArchivedMessage, Delivery, NewMessage, Party
from storage.postgres import packed
from storage.postgres.pool import Conn
from storage.postgres.tables import user_archives

COLUMNS = (
    "id, conversation_id, direction, sender_jid, body, stanza_id, client_id, ts, thread, payload"
)
#: The ``direction`` column: who wrote a message, seen from the company.
_DIRECTIONS = {Party.CUSTOMER: "in", Party.COMPANY: "out"}
_AUTHORS = {value: party for party, value in _DIRECTIONS.items()}


def direction(author: Party) -> str:
    """The ``direction`` value of a message ``author`` wrote."""
    return _DIRECTIONS[author]


def author(direction: str) -> Party:
    """Who wrote a message, from its ``direction`` value."""
    return _AUTHORS[direction]


#: The types of insert_rows' parameters, ``$1`` to ``$11``, one packed column each
#: (see row_columns); ``ts`` travels as microseconds since the epoch.
_TYPES = (
    "bigint",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "boolean",
    "bigint",
    "text",
    "text",
)

#: The same columns, qualified with the alias ``m`` (for joins and RETURNING).
M_COLUMNS = ", ".join(f"m.{column}" for column in COLUMNS.split(", "))


def from_row(row: asyncpg.Record) -> ArchivedMessage:
    return ArchivedMessage(
        id=row["id"],
        conversation_id=row["conversation_id"],
        author=author(row["direction"]),
        sender_jid=row["sender_jid"],
        body=row["body"],
        stanza_id=row["stanza_id"],
        client_id=row["client_id"],
        ts=row["ts"],
        thread=row["thread"],
        payload=row["payload"],
    )


def insert_rows(threads: str | None = None) -> str:
    """The INSERT of one batch's messages, from one packed column each (see
    :func:`row_columns`), ``$1`` to ``$11``.

    Archiving a routed batch (:mod:`storage.postgres.batch`) and
    :func:`insert_delivered` insert through it. ``threads`` names a CTE of the
    same statement returning ``stanza_id``, ``thread`` and ``payload``: a
    message found there is archived with that thread and payload rather than
    its own (a routed batch's agents' replies to a request, found by the
    statement itself). company_id is copied from the conversation (one
    primary-key lookup per row, the one the foreign key check makes anyway):
    NULL for a conversation that does not exist, which fails as a NOT NULL
    violation (see MISSING_CONVERSATION).
    """
    thread, payload, join = "m.thread", "m.payload", ""
    if threads is not None:
        thread, payload = "coalesce(j.thread, m.thread)", "coalesce(j.payload, m.payload)"
        join = f"LEFT JOIN {threads} j ON j.stanza_id = m.stanza_id"
    return f"""
        INSERT INTO messages (conversation_id, company_id, direction, sender_jid, body,
                              stanza_id, client_id, client_key, pending, ts, thread, payload)
        SELECT m.conversation_id,
               (SELECT c.company_id FROM conversations c WHERE c.id = m.conversation_id),
               m.direction, m.sender_jid, m.body, m.stanza_id,
               m.client_id, m.client_key, m.pending, {packed.moment("m.ts")}, {thread}, {payload}
          FROM unnest({packed.columns(1, _TYPES)})
               WITH ORDINALITY AS m(conversation_id, direction, sender_jid, body, stanza_id,
                                    client_id, client_key, pending, ts, thread, payload, ord)
               {join}
         ORDER BY m.ord"""


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


#: An unknown conversation: its company_id is NULL (checked first), or the
#: conversation was deleted between that lookup and the foreign key check.
MISSING_CONVERSATION = (asyncpg.NotNullViolationError, asyncpg.ForeignKeyViolationError)


def row_columns(messages: Sequence[NewMessage]) -> tuple[str, ...]:
    """The messages as one packed column each (:mod:`storage.postgres.packed`),
    in the order of insert_rows' unnest()."""
    return (
        packed.numbers([m.conversation_id for m in messages]),
        packed.texts([direction(m.author) for m in messages]),
        packed.texts([m.sender_jid for m in messages]),
        packed.texts([m.body for m in messages]),
        packed.texts([m.stanza_id for m in messages]),
        packed.texts([m.client_id for m in messages]),
        packed.texts([m.client_key for m in messages]),
        packed.flags([m.pending for m in messages]),
        packed.numbers([packed.micros(m.ts) for m in messages]),
        packed.texts([m.thread for m in messages]),
        packed.texts([m.payload for m in messages]),
    )


# For messages the component writes itself (requests and their notices):
# every row is new (fresh stanza-ids, no client key), none is pending, and
# all are handed over for delivery under one record, as by _INSERT.
_INSERT_DELIVERED = f"""
    WITH ins AS ({insert_rows()}
        RETURNING {COLUMNS}
    ), delivery AS (
        INSERT INTO deliveries (message_ids)
        SELECT array_agg(id ORDER BY id) FROM ins
        RETURNING id
    ), {user_archives.insert_cte(12, "ins")}
    SELECT ins.*, (SELECT id FROM delivery) AS delivery_id FROM ins ORDER BY ins.id
"""


async def insert_delivered(conn: Conn, messages: Sequence[NewMessage]) -> Delivery:
    """Archive new, not pending messages under one new delivery record.

    Unlike a routed batch (:mod:`storage.postgres.batch`) nothing is
    deduplicated: a stanza-id that is already archived raises Conflict. The
    delivery lists the messages in the order given. Raises NotFound for an
    unknown conversation.
    """
    if not messages or any(m.pending for m in messages):
        raise ValueError("insert_delivered takes one or more messages, none pending")
    try:
        rows = await conn.fetch(
            _INSERT_DELIVERED, *row_columns(messages), *user_archives.columns(messages)
        )
    except MISSING_CONVERSATION as exc:
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


async def count_pending(conn: Conn) -> int:
    """Customer messages waiting for an agent (the partial index messages_pending)."""
    count: int = await conn.fetchval("SELECT count(*) FROM messages WHERE pending")
    return count


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


# -- export ----------------------------------------------------------------------
#
# Pages of the archive (XEP-0313) read this table too: see message_pages.py.


async def of_conversation(
    conn: Conn, conversation_id: int, after: int, limit: int
) -> list[ArchivedMessage]:
    """Up to ``limit`` messages of the conversation after archive id ``after``, in order."""
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM messages WHERE conversation_id = $1 AND id > $2"
        " ORDER BY id LIMIT $3",
        conversation_id,
        after,
        limit,
    )
    return [from_row(row) for row in rows]


# -- retention -------------------------------------------------------------------
#
# A company's expired messages are the ones before its *boundary*: its first
# message, in archive order, that is not older than the retention. Archive
# order is arrival order and `ts` the arrival time, so the two agree (up to
# the milliseconds by which two processes' batches may interleave): what lies
# before the boundary is expired, and an expired message that arrived a
# moment after a newer one goes in a later run, once the boundary has moved
# past it. The boundary is found by walking messages_company from the
# company's oldest message (retention keeps those few), and the deletion
# walks the same index up to it, in batches of one short statement each.

_BOUNDARY = """
    SELECT coalesce(
        (SELECT id FROM messages WHERE company_id = $1 AND ts >= $2 ORDER BY id LIMIT 1),
        (SELECT max(id) + 1 FROM messages WHERE company_id = $1),
        0)
"""

# Rows another process is deleting are skipped, not waited for: with every
# process sweeping, each row is deleted once and nobody queues behind a lock.
# Archive ids only grow, so each batch starts after the previous one's last
# ($2): the rows deleted by earlier batches are not walked again.
_DELETE_BATCH = """
    WITH doomed AS (
        SELECT id FROM messages
         WHERE company_id = $1 AND id > $2 AND id < $3
         ORDER BY id
         LIMIT $4
         FOR UPDATE SKIP LOCKED
    ), deleted AS (
        DELETE FROM messages m USING doomed WHERE m.id = doomed.id RETURNING m.id
    )
    SELECT count(*) AS n, coalesce(max(id), 0) AS last FROM deleted
"""


async def expiry_boundary(conn: Conn, company_id: int, cutoff: dt.datetime) -> int:
    """The archive id before which every message of the company is older than ``cutoff``."""
    boundary: int = await conn.fetchval(_BOUNDARY, company_id, cutoff)
    return boundary


async def delete_before(
    conn: Conn, company_id: int, after: int, boundary: int, limit: int
) -> tuple[int, int]:
    """Delete up to ``limit`` messages of the company with ``after < id < boundary``.

    Returns (how many, the highest id deleted, or 0 if none).
    """
    row = await conn.fetchrow(_DELETE_BATCH, company_id, after, boundary, limit)
    assert row is not None
    return int(row["n"]), int(row["last"])


# -- first-response times ---------------------------------------------------------
#
# See ResponseTimeStore for what a wait is. Per conversation, in time order:
# each message's predecessor (the silence before it) and the first agent
# message from it on (the reply that ends a wait it starts). Messages up to
# one silence before ``since`` are read too, so that the silence before the
# first ones of the period is known; a customer message starts a wait when
# its silence is long enough, and the starts that share a reply are one
# wait, which began at the earliest.
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


async def median_first_response(
    conn: Conn, company_id: int, since: dt.datetime, silence_s: float
) -> float | None:
    """The median wait in seconds (see ResponseTimeStore); None when there is none."""
    median = await conn.fetchval(_MEDIAN_FIRST_RESPONSE, company_id, since, silence_s)
    return None if median is None else float(median)
