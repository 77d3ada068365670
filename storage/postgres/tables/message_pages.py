"""The ``messages`` table read page by page: XEP-0313 archive queries and its bounds.

The other half of the table's SQL (archiving, delivery, export, retention)
is in :mod:`.messages`; this module only reads, for the archive's pages
(one conversation or a whole company, with their filters and XEP-0431
full-text search) and their ends.
"""

from __future__ import annotations

import json
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
# A full-text query is answered one of three ways, by what they cost:
# - a scope of up to SCAN_LIMIT messages (most conversations) is read whole
#   and its matches kept: counted exactly, then paged;
# - else, if the planner expects up to MATCHES_LIMIT messages of the whole
#   archive to hold the words, the GIN index collects them, those of the
#   scope are kept, counted and paged. Both are MATERIALIZED steps: left to
#   itself the planner ANDs the GIN bitmap with a bitmap of the scope's
#   index, every entry of a company's archive, or walks the scope's index
#   computing to_tsvector row by row hoping for an early 51st match, which
#   for a rare word reads the whole scope;
# - else (a frequent word in a large scope), the page walks the scope's
#   index and stops at its last match (for a word in one message of six,
#   about 300 rows), and the count is left out, as for plain pages:
#   counting the matches would take the GIN bitmap of every message of the
#   archive holding the word, or to_tsvector of every message of the scope.
# The estimate is that of the words matched whole, from the index's
# statistics; prefix matches are at least as many. (The planner estimates a
# prefix from the statistics only when they hold 100 distinct words or
# more, and guesses 2 % otherwise.)
#
# A period (start, end) is read from messages_conversation_ts or
# messages_company_ts (migration 0021), which hold the ids: the ids of the
# period, then sorted, as long as the period holds up to PERIOD_LIMIT
# messages (counted from the same index). Walking the scope's id index and
# filtering by time reads every message before the period, and a bitmap of
# the BRIN index on ts ANDed with the scope's index reads every entry of the
# scope: on an archive of 10,000,000 messages a day of a conversation of
# 1,000,000 took 150 ms to 1 s, and a day of a company's archive up to 1.5 s
# even once the planner had the index. A longer period walks the scope's
# index, as before.
#
# Every statement of a page is planned for its own values: the page runs in
# a transaction with plan_cache_mode = force_custom_plan. A prepared
# statement otherwise switches after five runs to a generic plan, which
# knows neither the period nor the words: with its default guess of a third
# of the scope for "ts >= $n" it walked a whole conversation from its oldest
# message to find the last day. Nor JIT compilation or parallel workers,
# which cost a page more than they save: JIT added 100-600 ms to a rare
# word's search once its (high) estimate crossed jit_above_cost. Planning
# and the transaction cost a page about half a millisecond; the archive's
# writes keep their cached plans.

# XEP-0431: the words of the text (as the 'simple' configuration splits them,
# like the index), each matched as a word prefix, all of them required
# ("prefixes"), and the same words matched whole for the estimate ("words").
# The words come out of to_tsvector normalised, so they are cast to a
# tsquery without being parsed again; quotes and backslashes are escaped for
# the tsquery syntax. No words at all (only punctuation): NULL, nothing
# matches.
_TEXT_QUERY = r"""
    SELECT string_agg(word || ':*', ' & ')::tsquery::text AS prefixes,
           string_agg(word, ' & ')::tsquery::text AS words
      FROM unnest(tsvector_to_array(to_tsvector('simple', $1::text))) AS w,
           LATERAL (SELECT '''' || replace(replace(w, '\', '\\'), '''', '''''') || '''')
                   AS quoted(word)
"""
_MATCHES = "to_tsvector('simple', body) @@ {}::tsquery"

#: For the page's transaction only (see above).
_SETTINGS = """
    SET LOCAL plan_cache_mode = force_custom_plan;
    SET LOCAL jit = off;
    SET LOCAL max_parallel_workers_per_gather = 0
"""

#: The count (XEP-0059 <count/>) is exact up to this many messages and left
#: out above: XEP-0313 makes it optional, and counting 100,000 index entries
#: costs more than the page itself.
COUNT_LIMIT = 10_000
#: A period (start, end) of up to this many messages is read whole from its
#: index and sorted; a longer one walks the scope's index.
PERIOD_LIMIT = 50_000
#: A full-text query reads a scope of up to this many messages whole
#: (to_tsvector costs some 5-8 microseconds per message)...
SCAN_LIMIT = 2_000
#: ... or else collects up to this many matches from the GIN index, in the
#: whole archive (the planner's estimate), and is counted; beyond both, the
#: page walks the scope's index and its count is left out.
MATCHES_LIMIT = 20_000


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


def _filters(sql: _Sql, query: ArchiveQuery, ids: dict[str, int], words: str | None) -> None:
    """The conditions that select the result set (the ones its count counts).

    ``words``: the tsquery the bodies must match, None for no text filter.
    """
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
    if words is not None:
        sql.where(_MATCHES, words)


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
    # Newest first for a page that ends before a message (or the last page).
    # One row more than asked says whether the page is complete.
    backwards = query.before is not None
    direction = "DESC" if backwards else ""
    count: int | None
    async with conn.transaction():
        await conn.execute(_SETTINGS)
        ids = await resolve(conn, query, [*(s for s in bounds if s), *query.ids])
        if (query.text or "").strip():
            rows, count = await _text_page(conn, query, ids, direction)
        else:
            rows, count = await _plain_page(conn, query, ids, direction)
    complete = len(rows) <= query.limit
    found = [from_row(row) for row in rows[: query.limit]]
    if backwards:
        found.reverse()
    return found, complete, count


async def _walk(
    conn: Conn, query: ArchiveQuery, ids: dict[str, int], direction: str, words: str | None
) -> list[asyncpg.Record]:
    """The page read in the scope's order, from its index, up to one row past the page."""
    sql = _Sql()
    column = _scope(sql, query)
    _filters(sql, query, ids, words)
    _bounds(sql, query, ids)
    limit = sql.param(query.limit + 1)
    return await conn.fetch(
        f"SELECT {COLUMNS} FROM messages WHERE {sql.sql}"
        f" ORDER BY {column} {direction}, id {direction} LIMIT {limit}",
        *sql.args,
    )


async def _plain_page(
    conn: Conn, query: ArchiveQuery, ids: dict[str, int], direction: str
) -> tuple[list[asyncpg.Record], int | None]:
    period = query.start is not None or query.end is not None
    counted = _Sql()
    _scope(counted, query)
    _filters(counted, query, ids, None)
    cap = counted.param(max(COUNT_LIMIT, PERIOD_LIMIT if period else 0) + 1)
    count: int = await conn.fetchval(
        f"SELECT count(*) FROM (SELECT 1 FROM messages WHERE {counted.sql} LIMIT {cap}) capped",
        *counted.args,
    )
    if period and count <= PERIOD_LIMIT:
        rows = await _period(conn, query, ids, direction)
    else:
        rows = await _walk(conn, query, ids, direction, None)
    return rows, (count if count <= COUNT_LIMIT else None)


async def _period(
    conn: Conn, query: ArchiveQuery, ids: dict[str, int], direction: str
) -> list[asyncpg.Record]:
    """The page of a period: its ids from the (scope, ts) index, then sorted (see above)."""
    sql = _Sql()
    _scope(sql, query)
    _filters(sql, query, ids, None)
    _bounds(sql, query, ids)
    limit = sql.param(query.limit + 1)
    return await conn.fetch(
        f"""
        WITH period AS MATERIALIZED (SELECT id FROM messages WHERE {sql.sql}),
             chosen AS (SELECT id FROM period ORDER BY id {direction} LIMIT {limit})
        SELECT {M_COLUMNS} FROM chosen JOIN messages m ON m.id = chosen.id
         ORDER BY m.id {direction}
        """,
        *sql.args,
    )


async def _text_page(
    conn: Conn, query: ArchiveQuery, ids: dict[str, int], direction: str
) -> tuple[list[asyncpg.Record], int | None]:
    text = await conn.fetchrow(_TEXT_QUERY, (query.text or "").strip())
    assert text is not None
    if text["prefixes"] is None:
        return [], 0
    scoped = _Sql()
    _scope(scoped, query)
    _filters(scoped, query, ids, None)
    cap = scoped.param(SCAN_LIMIT + 1)
    size = await conn.fetchval(
        f"SELECT count(*) FROM (SELECT 1 FROM messages WHERE {scoped.sql} LIMIT {cap}) capped",
        *scoped.args,
    )
    if size <= SCAN_LIMIT:
        return await _collect(conn, query, ids, direction, text["prefixes"], scope_first=True)
    anywhere = _Sql()
    _filters(anywhere, query, ids, text["words"])
    plan = await conn.fetchval(
        f"EXPLAIN (FORMAT JSON) SELECT 1 FROM messages WHERE {anywhere.sql}", *anywhere.args
    )
    if json.loads(plan)[0]["Plan"]["Plan Rows"] <= MATCHES_LIMIT:
        return await _collect(conn, query, ids, direction, text["prefixes"], scope_first=False)
    return await _walk(conn, query, ids, direction, text["prefixes"]), None


async def _collect(
    conn: Conn,
    query: ArchiveQuery,
    ids: dict[str, int],
    direction: str,
    prefixes: str,
    *,
    scope_first: bool,
) -> tuple[list[asyncpg.Record], int]:
    """Every match in hand, then counted and paged (see above)."""
    sql = _Sql()
    column = _scope(sql, query)
    scope = sql.conditions.pop()  # placed apart; its parameter stays $1
    _filters(sql, query, ids, None)
    filters = sql.sql
    matches = _MATCHES.format(sql.param(prefixes))
    if scope_first:
        found = f"""
            found AS MATERIALIZED (SELECT id, body FROM messages WHERE {scope} AND {filters}),
            hits AS MATERIALIZED (SELECT id FROM found WHERE {matches})"""
    else:
        found = f"""
            found AS MATERIALIZED (
                SELECT id, {column} FROM messages WHERE {filters} AND {matches}),
            hits AS MATERIALIZED (SELECT id FROM found WHERE {scope})"""
    in_page = _Sql()
    in_page.args = sql.args
    _bounds(in_page, query, ids)
    limit = in_page.param(query.limit + 1)
    # One row even for an empty page, to carry the count.
    rows = await conn.fetch(
        f"""
        WITH {found},
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
