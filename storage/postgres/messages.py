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
message wherever it is read back. Every row carries its conversation's
``company_id`` (copied by the INSERT), so that a company's whole archive
reads in order from one index.

Reading (XEP-0313 pages of one conversation or of a whole company, with
their filters and XEP-0431 full-text search), the archive's ends, export,
and the retention sweep's batched deletes are at the end of the module.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import asyncpg

from storage.errors import Conflict, NotFound
from storage.models import ArchivedMessage, ArchiveQuery, Delivery, NewMessage, Party
from storage.postgres.pool import Conn

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


# The messages of one batch, from one array per column (see _arrays), $1 to $11.
# company_id is copied from the conversation (one primary-key lookup per row,
# the one the foreign key check makes anyway): NULL for a conversation that
# does not exist, which fails as a NOT NULL violation (see _missing_conversation).
_INSERT_ROWS = """
        INSERT INTO messages (conversation_id, company_id, direction, sender_jid, body,
                              stanza_id, client_id, client_key, pending, ts, thread, payload)
        SELECT conversation_id,
               (SELECT c.company_id FROM conversations c WHERE c.id = m.conversation_id),
               direction, sender_jid, body, stanza_id,
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


#: An unknown conversation: its company_id is NULL (checked first), or the
#: conversation was deleted between that lookup and the foreign key check.
_MISSING_CONVERSATION = (asyncpg.NotNullViolationError, asyncpg.ForeignKeyViolationError)


async def insert_batch(
    conn: Conn, messages: Sequence[NewMessage], confirmed: Sequence[int]
) -> tuple[set[str], int | None]:
    """Insert what is not a duplicate and forget the ``confirmed`` deliveries.

    Returns the stanza-ids inserted and the new delivery's id (or None).
    """
    try:
        rows = await conn.fetch(_INSERT, *_arrays(messages), list(confirmed))
    except _MISSING_CONVERSATION as exc:
        raise NotFound(f"conversation does not exist: {exc.detail}") from exc
    delivery_id = rows[0]["delivery_id"] if rows else None
    return {row["stanza_id"] for row in rows}, delivery_id


def _arrays(messages: Sequence[NewMessage]) -> tuple[list[Any], ...]:
    """The messages as one list per column, in the order of _INSERT_ROWS' unnest()."""
    return (
        [m.conversation_id for m in messages],
        [direction(m.author) for m in messages],
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
    except _MISSING_CONVERSATION as exc:
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


# -- reading: XEP-0313 pages, archive bounds, export ---------------------------
#
# A query's SQL is put together from fixed fragments, one per filter it uses,
# never from its values (they are parameters). Each shape is prepared once
# per connection and keeps a plan of its own: a catch-all statement with
# "$n IS NULL OR ..." conditions would be planned once for every shape, and
# its id bounds could not bound the index scan.
#
# The scope is written `conversation_id = ANY(ARRAY[$n])` (and the same for
# company_id), and pages are ordered by (scope, id). With a plain equality
# the planner drops the scope from the ordering as a constant and may walk
# the primary key backwards from the newest message, filtering: it believes
# a conversation holding half the table has half of the newest rows, but an
# archive grows by many interleaved conversations, and one test conversation
# of 100,000 messages behind 120,000 newer ones of others took 15 ms that
# way. With the array, only the scope's own index, messages_conversation or
# messages_company, gives that order: a page reads its 51 index entries.
#
# A full-text query collects the matches first (MATERIALIZED: the GIN index
# finds them, whatever their number, and the planner never walks the
# scope's index computing to_tsvector row by row hoping for an early 51st
# match: its estimates of prefix matches are poor, and for a rare word that
# walk read the whole conversation), then counts and pages them.

# XEP-0431: the words of the text (as the 'simple' configuration splits them,
# like the index) each matched as a word prefix, all of them required. The
# words come out of to_tsvector normalised, so they are cast to a tsquery
# without being parsed again; quotes and backslashes are escaped for the
# tsquery syntax. No words at all (only punctuation): NULL, matching nothing.
_TEXT_QUERY = r"""(
    SELECT string_agg('''' || replace(replace(w, '\', '\\'), '''', '''''') || ''':*', ' & ')
           ::tsquery
      FROM unnest(tsvector_to_array(to_tsvector('simple', {}::text))) AS w)"""

#: The count (XEP-0059 <count/>) is exact up to this many messages and left
#: out above: XEP-0313 makes it optional, and counting 100,000 index entries
#: costs more than the page itself.
COUNT_LIMIT = 10_000


class _Sql:
    """Numbered parameters and the conditions that use them."""

    def __init__(self) -> None:
        self.args: list[Any] = []
        self.conditions: list[str] = []

    def param(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def where(self, condition: str, *values: Any) -> None:
        """Add a condition; its ``{}`` placeholders become the values' parameters."""
        self.conditions.append(condition.format(*(self.param(v) for v in values)))

    @property
    def sql(self) -> str:
        return " AND ".join(self.conditions) or "true"


def _scope(sql: _Sql, query: ArchiveQuery) -> str:
    """Add the scope condition; returns the scope's column (see above)."""
    if query.conversation_id is not None:
        sql.where("conversation_id = ANY({}::bigint[])", [query.conversation_id])
        return "conversation_id"
    sql.where("company_id = ANY({}::bigint[])", [query.company_id])
    return "company_id"


async def resolve(conn: Conn, query: ArchiveQuery, stanza_ids: Sequence[str]) -> dict[str, int]:
    """The archive id of each stanza-id in the query's scope; NotFound for any other."""
    wanted = sorted(set(stanza_ids))
    if not wanted:
        return {}
    sql = _Sql()
    _scope(sql, query)
    sql.where("stanza_id = ANY({}::text[])", wanted)
    rows = await conn.fetch(f"SELECT stanza_id, id FROM messages WHERE {sql.sql}", *sql.args)
    found: dict[str, int] = {row["stanza_id"]: row["id"] for row in rows}
    missing = [stanza_id for stanza_id in wanted if stanza_id not in found]
    if missing:
        raise NotFound(f"no message {missing[0]!r} in this archive")
    return found


def _filters(sql: _Sql, query: ArchiveQuery, ids: dict[str, int], text: bool) -> None:
    """The conditions that select the result set (the ones its count counts)."""
    if query.after_id is not None:
        sql.where("id > {}", ids[query.after_id])
    if query.before_id is not None:
        sql.where("id < {}", ids[query.before_id])
    if query.ids:
        sql.where("id = ANY({}::bigint[])", [ids[stanza_id] for stanza_id in query.ids])
    if query.start is not None:
        sql.where("ts >= {}", query.start)
    if query.end is not None:
        sql.where("ts <= {}", query.end)
    if text:
        sql.where("to_tsvector('simple', body) @@ " + _TEXT_QUERY, (query.text or "").strip())


def _bounds(sql: _Sql, query: ArchiveQuery, ids: dict[str, int]) -> None:
    """The XEP-0059 page bounds, within the result set."""
    if query.after:
        sql.where("id > {}", ids[query.after])
    if query.before:
        sql.where("id < {}", ids[query.before])


async def page(conn: Conn, query: ArchiveQuery) -> tuple[list[ArchivedMessage], bool, int | None]:
    """(messages oldest first, complete, count of the result set or None if too many).

    Raises NotFound for a stanza-id (page bound or filter) that is not in the
    query's scope.
    """
    bounds = (query.after, query.before, query.after_id, query.before_id)
    ids = await resolve(conn, query, [*(s for s in bounds if s), *query.ids])
    # Newest first for a page that ends before a message (or the last page).
    # One row more than asked says whether the page is complete.
    backwards = query.before is not None
    direction = "DESC" if backwards else ""
    count: int | None
    if (query.text or "").strip():
        rows, count = await _text_page(conn, query, ids, direction)
    else:
        rows, count = await _plain_page(conn, query, ids, direction)
    complete = len(rows) <= query.limit
    found = [from_row(row) for row in rows[: query.limit]]
    if backwards:
        found.reverse()
    return found, complete, count


async def _plain_page(
    conn: Conn, query: ArchiveQuery, ids: dict[str, int], direction: str
) -> tuple[list[asyncpg.Record], int | None]:
    counted = _Sql()
    _scope(counted, query)
    _filters(counted, query, ids, text=False)
    cap = counted.param(COUNT_LIMIT + 1)
    count: int = await conn.fetchval(
        f"SELECT count(*) FROM (SELECT 1 FROM messages WHERE {counted.sql} LIMIT {cap}) capped",
        *counted.args,
    )
    sql = _Sql()
    column = _scope(sql, query)
    _filters(sql, query, ids, text=False)
    _bounds(sql, query, ids)
    limit = sql.param(query.limit + 1)
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM messages WHERE {sql.sql}"
        f" ORDER BY {column} {direction}, id {direction} LIMIT {limit}",
        *sql.args,
    )
    return rows, (count if count <= COUNT_LIMIT else None)


async def _text_page(
    conn: Conn, query: ArchiveQuery, ids: dict[str, int], direction: str
) -> tuple[list[asyncpg.Record], int]:
    sql = _Sql()
    _scope(sql, query)
    _filters(sql, query, ids, text=True)
    matches = sql.sql
    in_page = _Sql()
    in_page.args = sql.args
    _bounds(in_page, query, ids)
    limit = in_page.param(query.limit + 1)
    # One row even for an empty page, to carry the count.
    rows = await conn.fetch(
        f"""
        WITH hits AS MATERIALIZED (SELECT id FROM messages WHERE {matches}),
             chosen AS (SELECT id FROM hits WHERE {in_page.sql}
                         ORDER BY id {direction} LIMIT {limit})
        SELECT (SELECT count(*) FROM hits) AS total, {M_COLUMNS}
          FROM (SELECT 1) one
          LEFT JOIN (chosen JOIN messages m ON m.id = chosen.id) ON true
         ORDER BY m.id {direction}
        """,
        *in_page.args,
    )
    count = int(rows[0]["total"]) if rows else 0
    return [row for row in rows if row["id"] is not None], count


async def ends(conn: Conn, query: ArchiveQuery) -> tuple[ArchivedMessage, ArchivedMessage] | None:
    """The first and the last message of the query's scope (its filters are ignored)."""
    sql = _Sql()
    column = _scope(sql, query)
    found = []
    for direction in ("", "DESC"):
        found.append(
            await conn.fetchrow(
                f"SELECT {COLUMNS} FROM messages WHERE {sql.sql}"
                f" ORDER BY {column} {direction}, id {direction} LIMIT 1",
                *sql.args,
            )
        )
    first, last = found
    if first is None or last is None:
        return None
    return from_row(first), from_row(last)


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
