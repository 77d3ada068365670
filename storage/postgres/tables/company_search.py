"""Searching the ``companies`` table through its indexes (migrations 0012, 0020).

Every criterion compares folded forms (``orgchat_fold``: lower case, runs of
white space made one space): the query is folded by the same SQL function
as the generated columns it is compared with. A part of the name (the slug,
the category) is a ``LIKE '%...%'`` answered by a pg_trgm GIN index; a whole
category or city is an equality on a btree index.

Results are ordered by relevance, then name, then slug. With a name (or a
text) to look for, companies whose name starts with it, or has a word that
starts with it, come first (rank 0), then the other matches (rank 1). Each
rank is read in that order (a btree index on the folded name, or the few
rows a trigram index finds) and stops after a page, and the second rank is
read only when the first does not fill the page, so that a broad query
costs a page rather than a sort of every match. One or two letters (no
trigram to look up) find the names with a word starting with them. Pages are
keyset pages: a page starts after (or ends before) a company of the results,
wherever it ranks.

The names' words (``company_words``, migration 0020) answer the word starts:
rank 0 of a part without a space is read word by word, each word's
companies in the results' order (:func:`_by_word`), and a part with a space
finds its companies by what follows the space, which starts a word of every
name that holds it (:meth:`_Where._after_a_space`).
"""

from __future__ import annotations

import dataclasses

import asyncpg

from storage.models import Company, CompanySearch, KnownValues, SearchCursor
from storage.postgres.pool import Conn
from storage.postgres.tables.companies import COLUMNS, from_row

_LIKE_ESCAPES = str.maketrans({"\\": "\\\\", "%": "\\%", "_": "\\_"})
#: Distinct categories (cities) listed at most: the choices of a search form.
MAX_KNOWN_VALUES = 1000
#: A part of a name shorter than this (one or two letters) has no trigram to
#: look up: it finds names with a word that starts with it, through the index.
SHORTEST_PART = 3
#: company_words keeps a word (a suffix) to this many characters (0020).
WORD_CUT = 100
#: A part of a name with more distinct words starting with it is read in name
#: order through the names' index, not word by word.
MAX_WORDS = 200
#: The results' order, on companies and on company_words (the same values).
_ORDER_BY = ("name_folded", "slug")
_ORDER_BY_WORD = ("cw.sort_name", "cw.sort_slug")


@dataclasses.dataclass(frozen=True, slots=True)
class _Key:
    """Where a company sits in the order of the results."""

    rank: int
    name: str
    slug: str


class _Args:
    """The arguments of one statement, referred to as $1, $2..."""

    def __init__(self) -> None:
        self.args: list[object] = []

    def arg(self, value: object) -> str:
        self.args.append(value)
        return f"${len(self.args)}"


class _Where(_Args):
    """The conditions of a search and the arguments they refer to."""

    def __init__(self, criteria: CompanySearch) -> None:
        super().__init__()
        conditions: list[str] = []
        if criteria.takes_requests:
            conditions.append("accepts_requests")
        name, text = _given(criteria.name), _given(criteria.text)
        ranked_by: str | None = None
        if name is not None:
            ranked_by = part = self._part(name)
            if _short(name):
                conditions.append(_word_start("name_folded", part))
            elif _long_tail(name):
                # Led by the words' index; "|| ''" keeps the planner from the
                # trigram index, whose cost it underestimates for long parts.
                conditions.append(f"name_folded || '' LIKE '%' || {part} || '%'")
                conditions.append(self._after_a_space(name))
            else:
                conditions.append(f"name_folded LIKE '%' || {part} || '%'")
        if text is not None:
            part = self._part(text)
            ranked_by = ranked_by or part
            if _short(text):
                conditions.append(
                    f"({_word_start('name_folded', part)} OR slug LIKE {part} || '%'"
                    f" OR category_folded LIKE {part} || '%')"
                )
            else:
                conditions.append(
                    f"(name_folded LIKE '%' || {part} || '%' OR slug LIKE '%' || {part} || '%'"
                    f" OR category_folded LIKE '%' || {part} || '%')"
                )
        for column, whole in (("category", criteria.category), ("city", criteria.city)):
            if _given(whole) is not None:
                conditions.append(f"{column}_folded = orgchat_fold({self.arg(whole)})")
        self.sql = " AND ".join(conditions) or "true"
        #: Whether every match is a word start of the name and nothing else is
        #: asked: then a row of company_words is a match by itself.
        self.words_only = len(conditions) == 1 and name is not None and _short(name)
        # Rank 0: the name starts with what is looked for, or one of its words does.
        self.rank0 = None if ranked_by is None else _word_start("name_folded", ranked_by)
        #: What rank 0 is ranked by, as given (None: no rank 0 to read word by word).
        self.word_start = None if ranked_by is None else (name if name is not None else text)

    def _part(self, value: str) -> str:
        """A folded LIKE pattern fragment matching ``value`` literally."""
        return f"orgchat_fold({self.arg(value.translate(_LIKE_ESCAPES))})"

    def _after_a_space(self, value: str) -> str:
        """What a name holding ``value`` (which has a space, folded) also holds:
        a word starting with what follows the first space, through the words'
        index. A condition that follows from the LIKE, so that the trigram
        index's common trigrams are never decoded for a long part."""
        folded = f"orgchat_fold({self.arg(value)})"
        # The OR is inside the subquery (a constant of the custom plan there),
        # so that the IN is still planned as a join the words' index can lead.
        return (
            f"id IN (SELECT company_id FROM company_words WHERE strpos({folded}, ' ') = 0"
            f" OR suffix ^@ left(substr({folded}, strpos({folded}, ' ') + 1), {WORD_CUT}))"
        )

    def ranks(self) -> list[tuple[int, str]]:
        """(rank, condition) of each rank, in order."""
        if self.rank0 is None:
            return [(0, self.sql)]
        return [(0, f"{self.sql} AND {self.rank0}"), (1, f"{self.sql} AND NOT {self.rank0}")]


def _spaced(value: str) -> bool:
    """Whether ``value`` has words, folded (the SQL checks again)."""
    return " " in " ".join(value.split())


def _long_tail(value: str) -> bool:
    """Whether what follows the first space of ``value``, folded, is long
    enough to be looked up among the names' word starts (a few companies
    have it), rather than through the trigram index."""
    return len(" ".join(value.split()[1:])) >= SHORTEST_PART


def _given(value: str | None) -> str | None:
    return value if value is not None and value.strip() else None


def _short(value: str) -> bool:
    """Too short for a trigram index: one or two characters, folded."""
    return len(" ".join(value.split())) < SHORTEST_PART


def _word_start(column: str, part: str) -> str:
    return f"({column} LIKE {part} || '%' OR {column} LIKE '% ' || {part} || '%')"


async def page(
    conn: Conn, criteria: CompanySearch, cursor: SearchCursor, limit: int
) -> list[Company] | None:
    """One page of results, in order; None if the cursor's company is not among them."""
    backwards = cursor.before is not None or cursor.last
    anchor = cursor.before if cursor.before is not None else cursor.after
    key = None
    if anchor is not None:
        key = await _key(conn, criteria, anchor)
        if key is None:
            return None
    offset = 0 if backwards or anchor is not None else max(0, cursor.index)
    direction = "DESC" if backwards else "ASC"
    order = [0, 1] if not backwards else [1, 0]
    found: list[Company] = []
    # Rank by rank, each through an index in the results' order: the next
    # rank is read only when the page is not full yet.
    for wanted_rank in order:
        where = _Where(criteria)  # the arguments of this one statement
        of_rank = dict(where.ranks()).get(wanted_rank)
        if of_rank is None:
            continue
        words = None
        if wanted_rank == 0 and where.word_start is not None and not _spaced(where.word_start):
            words = await _words(conn, where.word_start)
        order_by = _ORDER_BY if words is None else _ORDER_BY_WORD
        beyond: str | None = "true"
        if key is not None:
            beyond = _beyond(where, key, wanted_rank, backwards, order_by)
        if beyond is None:
            continue
        wanted = where.arg(offset + limit - len(found))
        if words is None:
            sql = f"SELECT {COLUMNS} FROM companies WHERE {of_rank} AND {beyond}"
        elif words:
            sql = _by_word(where, words, of_rank, beyond, _ordered(order_by, direction), wanted)
        else:
            continue  # no name has a word starting so
        rows = await conn.fetch(
            f"{sql} ORDER BY {_ordered(order_by, direction)} LIMIT {wanted}", *where.args
        )
        found.extend(from_row(row) for row in rows)
        if len(found) >= offset + limit:
            break
    companies = found[offset : offset + limit]
    return companies[::-1] if backwards else companies


async def _key(conn: Conn, criteria: CompanySearch, slug: str) -> _Key | None:
    """Where the company ``slug`` sits in the results (None: not a result)."""
    where = _Where(criteria)
    rank = "0" if where.rank0 is None else f"CASE WHEN {where.rank0} THEN 0 ELSE 1 END"
    row = await conn.fetchrow(
        f"SELECT {rank} AS rank, name_folded, slug FROM companies"
        f" WHERE {where.sql} AND slug = {where.arg(slug)}",
        *where.args,
    )
    return None if row is None else _Key(row["rank"], row["name_folded"], row["slug"])


def _beyond(
    where: _Where, key: _Key, rank: int, backwards: bool, order_by: tuple[str, str] = _ORDER_BY
) -> str | None:
    """The condition on rank ``rank``'s rows to come after (before) ``key``;
    None when none of them can."""
    if rank != key.rank:
        before_key = rank < key.rank
        return "true" if before_key == backwards else None
    operator = "<" if backwards else ">"
    name, slug = order_by
    return f"({name}, {slug}) {operator} ({where.arg(key.name)}, {where.arg(key.slug)})"


def _ordered(order_by: tuple[str, str], direction: str) -> str:
    return ", ".join(f"{column} {direction}" for column in order_by)


def _by_word(
    where: _Where, words: list[str], condition: str, beyond: str, order: str, limit: str
) -> str:
    """Rank 0 word by word: the companies of :func:`_word_matches`, whole; the
    statement goes on with " ORDER BY ``order`` LIMIT ``limit``"."""
    return (
        f"SELECT {COLUMNS} FROM ({_word_matches(where, words, condition, beyond, order, limit)})"
        f" AS cw JOIN companies ON companies.id = cw.company_id"
    )


def _word_matches(
    where: _Args, words: list[str], condition: str | None, beyond: str, order: str, limit: str
) -> str:
    """For each word starting with what is looked for, its companies in the
    results' order (index company_words_by_word, from the keyset condition
    ``beyond`` on), merged, each company once, the first ``limit`` in
    ``order``: rows of (company_id, sort_name, sort_slug).

    One branch per word, the word a constant of the (custom) plan, each
    ordered and limited itself, and whether a company passes ``condition`` a
    subquery per word row (never joined): so the plan is always an ordered
    walk of the words' index that stops at ``limit``, whatever the statistics
    say. A join let the planner read every company of a frequent word and
    sort them (0.3 s for 50,000), and so did branches without their own
    order (0.17 s for two words). A ``condition`` of None: every word row is
    a match (``where.words_only``), and the walk reads the index alone."""
    passes = (
        ""
        if condition is None
        else (f" AND (SELECT {condition} FROM companies WHERE companies.id = cw.company_id)")
    )
    branches = " UNION ALL ".join(
        f"(SELECT cw.company_id, cw.sort_name, cw.sort_slug FROM company_words cw"
        f" WHERE cw.word = {where.arg(word)} AND {beyond}{passes}"
        f" ORDER BY {order} LIMIT {limit})"
        for word in words
    )
    return (
        f"SELECT DISTINCT ON (cw.sort_name, cw.sort_slug) cw.* FROM ({branches}) AS cw"
        f" ORDER BY {order} LIMIT {limit}"
    )


#: The distinct words (cut as company_words cuts them) that start with the
#: first word of what is looked for, an index probe each; MAX_WORDS + 1 at most.
_WORDS = """
    WITH RECURSIVE found(word) AS (
        (SELECT word FROM company_words WHERE word ^@ {prefix} ORDER BY word LIMIT 1)
        UNION ALL
        SELECT (SELECT w.word FROM company_words w WHERE w.word ^@ {prefix}
                   AND w.word > found.word ORDER BY w.word LIMIT 1)
          FROM found WHERE found.word IS NOT NULL
    )
    SELECT word FROM found WHERE word IS NOT NULL LIMIT $2
"""


async def _words(conn: Conn, value: str) -> list[str] | None:
    """The words of names that start with ``value``'s first word; None when
    there are more than MAX_WORDS (then they are not read word by word)."""
    prefix = f"left(split_part(orgchat_fold($1), ' ', 1), {WORD_CUT})"
    rows = await conn.fetch(_WORDS.format(prefix=prefix), value, MAX_WORDS + 1)
    return None if len(rows) > MAX_WORDS else [row["word"] for row in rows]


async def count(conn: Conn, criteria: CompanySearch, cap: int) -> int:
    """How many companies match, counting no further than ``cap``: through the
    words' index alone when every match is a word start (:func:`_word_matches`:
    one or two letters shared by 50,000 names read ``cap`` index entries),
    else the companies themselves until ``cap`` matches."""
    where = _Where(criteria)
    if where.words_only and where.word_start is not None:
        words = await _words(conn, where.word_start)
        if words is not None:
            if not words:
                return 0
            args = _Args()  # the words' index alone: none of the conditions
            matches = _word_matches(
                args, words, None, "true", _ordered(_ORDER_BY_WORD, "ASC"), args.arg(cap)
            )
            return int(await conn.fetchval(f"SELECT count(*) FROM ({matches}) AS m", *args.args))
    return int(
        await conn.fetchval(
            f"SELECT count(*) FROM (SELECT 1 FROM companies WHERE {where.sql}"
            f" LIMIT {where.arg(cap)}) AS matches",
            *where.args,
        )
    )


async def position(conn: Conn, criteria: CompanySearch, slug: str, cap: int) -> int | None:
    """How many results come before the company ``slug`` (None: beyond ``cap``,
    or not a result)."""
    key = await _key(conn, criteria, slug)
    if key is None:
        return None
    where = _Where(criteria)
    before = [
        f"({condition} AND {beyond})"
        for rank, condition in where.ranks()
        if (beyond := _beyond(where, key, rank, backwards=True)) is not None
    ]
    if not before:
        return 0
    found = int(
        await conn.fetchval(
            f"SELECT count(*) FROM (SELECT 1 FROM companies WHERE {' OR '.join(before)}"
            f" LIMIT {where.arg(cap)}) AS earlier",
            *where.args,
        )
    )
    return None if found >= cap else found


#: The distinct folded values of one column, an index probe each (a "loose
#: index scan"), spelled as a company of each spells it, white space tidied.
_DISTINCT = """
    WITH RECURSIVE folded(value) AS (
        (SELECT {column}_folded FROM companies WHERE {column}_folded <> ''
          ORDER BY {column}_folded LIMIT 1)
        UNION ALL
        SELECT (SELECT {column}_folded FROM companies WHERE {column}_folded > folded.value
                 ORDER BY {column}_folded LIMIT 1)
          FROM folded WHERE folded.value IS NOT NULL
    )
    SELECT (SELECT btrim(regexp_replace({column}, '\\s+', ' ', 'g')) FROM companies
             WHERE {column}_folded = folded.value LIMIT 1) AS spelled
      FROM folded WHERE folded.value IS NOT NULL
     LIMIT $1
"""


async def known_values(conn: Conn) -> KnownValues:
    categories = await conn.fetch(_DISTINCT.format(column="category"), MAX_KNOWN_VALUES)
    cities = await conn.fetch(_DISTINCT.format(column="city"), MAX_KNOWN_VALUES)
    return KnownValues(categories=tuple(_spelled(categories)), cities=tuple(_spelled(cities)))


def _spelled(rows: list[asyncpg.Record]) -> list[str]:
    return [row["spelled"] for row in rows]
