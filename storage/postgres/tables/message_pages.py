"""The ``messages`` table read page by page: XEP-0313 archive queries and its bounds.

The other half of the table's SQL (archiving, delivery, export, retention)
is in :mod:`.messages`; this module only reads, for the archive's pages
(one conversation or a whole company, with their filters and XEP-0431
full-text search) and their ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from storage.errors import NotFound
from storage.models import ArchivedMessage, ArchiveQuery
from storage.postgres.pool import Conn
from storage.postgres.tables.messages import COLUMNS, M_COLUMNS, from_row

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
