"""Archive queries on a large archive: pages of 50 from up to 10 million archived messages.

Run on demand (never by the test suite); PostgreSQL must be up (`make up`):

    .venv/bin/python -m bench.mam [--messages 1000000] [--companies 10]
                                  [--written 100000] [--runs 200] [--keep]
                                  [--reuse]

It recreates the database ``orgchat_bench_mam``, applies the migrations and
fills it with ``--messages`` messages spread over a year and interleaved as
an archive grows: 10 % in one big conversation of the company measured
(``bench-shop``), 40 % in its other conversations and the rest in
``--companies`` - 1 neighbouring companies; besides the big one,
conversations hold 500 messages on average, their sizes Pareto-distributed.
Customers write two messages in three, one of three agents of the company
the others. Bodies are drawn from a fixed vocabulary with a Zipf-like skew,
English and Russian; ``akademgorodok`` is in about 0.1 % of them,
``delivery`` in about 1 % and ``price`` in one in six.

The rows are those the archiving INSERT writes (storage/postgres/tables/
messages.py), column for column: ``company_id`` copied from the conversation,
96-bit hexadecimal stanza-ids, a client id and its origin-id key. All but
the newest ``--written`` are written in bulk with COPY, the table's indexes
dropped meanwhile and built again from their own definitions; the newest go
through ArchiveStore.append_batch in batches of 1,000, the confirmations
folded into the next batch as the component does, and their rate (the write
path on an archive of that size) is printed. Then VACUUM ANALYZE (what
autovacuum does in production). ``--reuse`` skips all of this and measures
the archive a run with ``--keep`` and the same ``--messages`` left, after
applying the migrations newer than it (a new index, tried in minutes).

Each query kind is then timed ``--runs`` times (or for BUDGET_S seconds)
through ArchiveStore.page, which is all the SQL a XEP-0313 query runs (the
stanza-id lookup, the count and the page); the XMPP round trip (rendering
and ejabberd's routing) is not part of it. The kinds: in the big
conversation, the newest, the oldest and a random middle page (by RSM
``<after/>``, ``<before/>`` and ``after-id``), a random day of the middle
month, everything since a day ago, full-text searches (newest matches first)
for each of the three words and for the 1 % word before a random middle
message; the newest page and a search of a conversation of median size;
and across the company's whole archive, the newest and a middle page, a
day, an hour and two searches. Prints p50 and p99 in milliseconds, and the
count the page carried ("-": left out, as XEP-0313 allows).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import itertools
import random
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import asyncpg

from bench.run import PG_ADMIN, database_url
from storage import postgres
from storage.models import ArchiveQuery, Company, CompanyDraft, Conversation, NewMessage, Party
from storage.postgres.tables import messages as messages_table

BENCH_DB = "orgchat_bench_mam"
DSN = database_url(BENCH_DB)
PAGE = 50
BATCH = 1000
#: Rows per COPY statement of the bulk fill (one progress line each).
COPY_CHUNK = 1_000_000
RARE, COMMON, FREQUENT = "akademgorodok", "delivery", "price"
RARE_SHARE, COMMON_SHARE = 0.001, 0.01
#: The big conversation's share of the archive, and the rest of its company's.
BIG_SHARE, SHOP_SHARE = 0.10, 0.40
#: Messages per conversation on average, the big one aside.
CONVERSATION_SIZE = 500
AGENTS = 3
DAYS = 365
DAY = dt.timedelta(days=1)
#: A query's runs stop after this many seconds, once it has had MIN_RUNS.
BUDGET_S, MIN_RUNS = 60.0, 20

_WORDS = [
    "hello",
    "thanks",
    "please",
    "order",
    "pizza",
    "pasta",
    "price",
    "stock",
    "today",
    "tomorrow",
    "open",
    "close",
    "hours",
    "address",
    "phone",
    "call",
    "back",
    "available",
    "size",
    "colour",
    "winter",
    "summer",
    "tyres",
    "wheels",
    "fitted",
    "how",
    "much",
    "many",
    "when",
    "where",
    "deliver",
    "ready",
    "pick",
    "up",
    "card",
    "cash",
    "receipt",
    "invoice",
    "discount",
    "offer",
    "привет",
    "спасибо",
    "пожалуйста",
    "заказ",
    "цена",
    "наличие",
    "сегодня",
    "завтра",
    "доставка",
    "адрес",
    "телефон",
    "размер",
    "зима",
    "лето",
    "шины",
    "колёса",
    "сколько",
    "когда",
    "где",
    "готово",
    "карта",
    "скидка",
]
# Word n (from 0) is drawn when a Pareto variate (alpha 1.2, from 1) falls in
# [n + 1, n + 2), the last word for everything beyond: P(word <= n) is
# 1 - (n + 2) ** -1.2. "price", the seventh, is in one body of six.
_CUMULATIVE = [1 - (n + 2) ** -1.2 for n in range(len(_WORDS) - 1)] + [1.0]

#: The columns the archiving INSERT writes (tables/messages.py, _INSERT_ROWS).
_COPY_COLUMNS = (
    "conversation_id",
    "company_id",
    "direction",
    "sender_jid",
    "body",
    "stanza_id",
    "client_id",
    "client_key",
    "pending",
    "ts",
    "thread",
    "payload",
)


def _body(rng: random.Random) -> str:
    words = rng.choices(_WORDS, cum_weights=_CUMULATIVE, k=12)
    if rng.random() < RARE_SHARE:
        words.insert(3, RARE)
    if rng.random() < COMMON_SHARE:
        words.insert(1, COMMON)
    return " ".join(words).capitalize() + "?"


@dataclasses.dataclass(frozen=True)
class Scopes:
    """What the queries read: the shop, its big conversation and a typical one."""

    shop: int
    big: int
    typical: int


@dataclasses.dataclass(frozen=True)
class Archive:
    """Who writes in the bench's archive, and each conversation's share of it."""

    shop: Company
    big: Conversation
    #: A conversation of the shop of median share: what most customers have.
    typical: Conversation
    conversations: list[Conversation]
    cumulative: list[float]  #: the conversations' cumulative shares
    agents: dict[int, list[str]]  #: company id -> its agents' JIDs


def _shares(rng: random.Random, n: int, total: float) -> list[float]:
    """``n`` Pareto-distributed shares adding up to ``total``."""
    weights = [rng.paretovariate(1.5) for _ in range(n)]
    scale = total / sum(weights)
    return [w * scale for w in weights]


def _shop_shares(rng: random.Random, n: int) -> tuple[list[float], int]:
    """The shares of the shop's ``n`` other conversations, and which is the median one."""
    small = _shares(rng, n, SHOP_SHARE)
    return small, sorted(range(n), key=small.__getitem__)[n // 2]


def _shop_size(messages: int) -> int:
    """How many conversations the shop has besides the big one."""
    return max(20, round(messages * SHOP_SHARE / CONVERSATION_SIZE))


async def _archive(pg: postgres.PostgresStores, messages: int, companies: int) -> Archive:
    """The companies and their conversations (the first company is the shop)."""
    rng = random.Random(0)
    others = 1 - BIG_SHARE - SHOP_SHARE
    plan = [("bench-shop", SHOP_SHARE)] + [
        (f"neighbour-{n}", others / (companies - 1)) for n in range(1, companies)
    ]
    convs: list[Conversation] = []
    shares: list[float] = []
    agents: dict[int, list[str]] = {}
    for index, (slug, share) in enumerate(plan):
        company = await pg.directory.add_company(CompanyDraft(slug=slug, name=slug))
        agents[company.id] = [f"agent{n}@{slug}.localhost" for n in range(AGENTS)]
        n = (
            _shop_size(messages)
            if index == 0
            else max(20, round(messages * share / CONVERSATION_SIZE))
        )
        pairs = [(company.id, f"customer{k}@localhost", None) for k in range(n + (index == 0))]
        for first in range(0, len(pairs), 5000):
            convs += await pg.conversations.open_many(pairs[first : first + 5000])
        if index == 0:
            shop, big = company, convs[0]
            shares.append(BIG_SHARE)
            small, median = _shop_shares(rng, n)
            typical = convs[1 + median]
            shares += small
        else:
            shares += _shares(rng, n, share)
    return Archive(shop, big, typical, convs, list(itertools.accumulate(shares)), agents)


async def _kept_scopes(conn: asyncpg.Connection[asyncpg.Record], messages: int) -> Scopes:
    """The scopes of an archive kept by an earlier run for ``messages`` (see _archive)."""
    convs = await conn.fetch(
        "SELECT v.id FROM conversations v JOIN companies c ON c.id = v.company_id"
        " WHERE c.slug = 'bench-shop' ORDER BY v.id"
    )
    if not convs:
        raise SystemExit(f"--reuse: no archive kept in {BENCH_DB}")
    _, median = _shop_shares(random.Random(0), _shop_size(messages))
    shop = await conn.fetchval("SELECT id FROM companies WHERE slug = 'bench-shop'")
    return Scopes(shop, convs[0]["id"], convs[1 + median]["id"])


def _messages(archive: Archive, count: int) -> Iterator[NewMessage]:
    """The archive's ``count`` messages, oldest first, at a steady rate up to now."""
    rng = random.Random(1)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=DAYS)
    step = dt.timedelta(days=DAYS) / count
    for first in range(0, count, BATCH):
        n = min(BATCH, count - first)
        chosen = rng.choices(archive.conversations, cum_weights=archive.cumulative, k=n)
        for i, conv in enumerate(chosen, first):
            out = rng.random() < 1 / 3
            origin_id = f"{rng.getrandbits(128):032x}"
            yield NewMessage(
                conversation_id=conv.id,
                author=Party.COMPANY if out else Party.CUSTOMER,
                sender_jid=rng.choice(archive.agents[conv.company_id])
                if out
                else conv.customer_jid,
                body=_body(rng),
                stanza_id=f"{rng.getrandbits(96):024x}",
                client_id=origin_id,
                client_key="o:" + origin_id,
                pending=False,
                ts=start + step * i,
            )


def _record(message: NewMessage, company_id: int) -> tuple[Any, ...]:
    """One row for COPY, in the order of _COPY_COLUMNS."""
    m = message
    return (
        m.conversation_id,
        company_id,
        messages_table.direction(m.author),
        m.sender_jid,
        m.body,
        m.stanza_id,
        m.client_id,
        m.client_key,
        m.pending,
        m.ts,
        m.thread,
        m.payload,
    )


async def _drop_indexes(conn: asyncpg.Connection[asyncpg.Record]) -> list[str]:
    """Drop every index of ``messages`` but its primary key; returns what rebuilds them."""
    rows = await conn.fetch(
        """
        SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS index,
               c.conname, pg_get_constraintdef(c.oid) AS constraint
          FROM pg_index i
          LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
         WHERE i.indrelid = 'messages'::regclass AND NOT i.indisprimary
        """
    )
    rebuild = []
    for row in rows:
        if row["conname"] is None:
            await conn.execute(f"DROP INDEX {row['name']}")
            rebuild.append(row["index"])
        else:
            await conn.execute(f"ALTER TABLE messages DROP CONSTRAINT {row['conname']}")
            rebuild.append(
                f"ALTER TABLE messages ADD CONSTRAINT {row['conname']} {row['constraint']}"
            )
    return rebuild


async def _bulk(archive: Archive, found: Iterable[NewMessage], count: int) -> None:
    """COPY ``count`` messages into ``messages``, without its indexes, then build them."""
    company_of = {conv.id: conv.company_id for conv in archive.conversations}
    rows = iter(found)
    conn = await asyncpg.connect(DSN)
    try:
        rebuild = await _drop_indexes(conn)
        began = time.perf_counter()
        for first in range(0, count, COPY_CHUNK):
            chunk = itertools.islice(rows, min(COPY_CHUNK, count - first))
            await conn.copy_records_to_table(
                "messages",
                records=(_record(m, company_of[m.conversation_id]) for m in chunk),
                columns=_COPY_COLUMNS,
            )
            done = min(count, first + COPY_CHUNK)
            elapsed = time.perf_counter() - began
            print(f"  COPY: {done:,} rows, {elapsed:.0f} s ({done / elapsed:,.0f}/s)", flush=True)
        began = time.perf_counter()
        await conn.execute("SET maintenance_work_mem = '1GB'")
        for statement in rebuild:
            await conn.execute(statement)
        print(f"  {len(rebuild)} indexes built in {time.perf_counter() - began:.0f} s", flush=True)
    finally:
        await conn.close()


async def _write(pg: postgres.PostgresStores, found: Iterable[NewMessage]) -> tuple[int, float]:
    """Archive through ArchiveStore in batches; returns (messages, seconds)."""
    rows = iter(found)
    began = time.perf_counter()
    written = 0
    confirmed: list[int] = []
    while batch := list(itertools.islice(rows, BATCH)):
        result = await pg.archive.append_batch(batch, confirmed)
        confirmed = [] if result.delivery_id is None else [result.delivery_id]
        written += len(batch)
    await pg.archive.confirm(confirmed)
    return written, time.perf_counter() - began


async def _fill(pg: postgres.PostgresStores, archive: Archive, messages: int, written: int) -> None:
    found = _messages(archive, messages)
    bulk = max(0, messages - written)
    if bulk:
        await _bulk(archive, found, bulk)
    n, seconds = await _write(pg, found)
    if n:
        print(
            f"  ArchiveStore.append_batch: {n:,} messages in {seconds:.1f} s"
            f" ({n / seconds:,.0f} msg/s) on top of {bulk:,}",
            flush=True,
        )
    conn = await asyncpg.connect(DSN)
    try:
        began = time.perf_counter()
        await conn.execute("VACUUM ANALYZE messages")
        await conn.execute("ANALYZE conversations")
        print(f"  VACUUM ANALYZE: {time.perf_counter() - began:.0f} s", flush=True)
        await _print_sizes(conn)
    finally:
        await conn.close()


async def _print_sizes(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """The sizes of ``messages`` and of each of its indexes."""
    sizes = await conn.fetch(
        """
        SELECT c.relname, pg_relation_size(c.oid) AS bytes
          FROM pg_class c
         WHERE c.oid = 'messages'::regclass
            OR c.oid IN (SELECT indexrelid FROM pg_index
                          WHERE indrelid = 'messages'::regclass)
         ORDER BY c.relkind DESC, c.relname
        """
    )
    print("  " + ", ".join(f"{r['relname']} {r['bytes'] / 2**20:,.0f} MB" for r in sizes))


async def _prepare() -> None:
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {BENCH_DB}")
    finally:
        await admin.close()
    await postgres.migrate(DSN)


@dataclasses.dataclass
class Timing:
    name: str
    ms: list[float]
    rows: int
    count: int | None  #: the result set's count, None when the page left it out

    @property
    def p50(self) -> float:
        return statistics.median(self.ms)

    @property
    def p99(self) -> float:
        ordered = sorted(self.ms)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


async def _time(
    pg: postgres.PostgresStores, name: str, runs: int, query: Callable[[int], ArchiveQuery]
) -> Timing:
    """Time up to ``runs`` pages of ``query(run)``, after one that warms the statement cache.

    A slow query stops after BUDGET_S seconds (and at least MIN_RUNS runs).
    """
    await pg.archive.page(query(0))
    ms: list[float] = []
    page = None
    began = time.perf_counter()
    for n in range(runs):
        start = time.perf_counter()
        page = await pg.archive.page(query(n))
        ms.append((time.perf_counter() - start) * 1000)
        if n + 1 >= MIN_RUNS and time.perf_counter() - began > BUDGET_S:
            break
    assert page is not None
    return Timing(name, ms, len(page.messages), page.count)


async def _middle(column: str, value: int, n: int) -> list[str]:
    """``n`` random stanza-ids from the middle fifth of a scope's archive."""
    conn = await asyncpg.connect(DSN)
    try:
        bounds = await conn.fetchrow(
            f"SELECT min(id), max(id) FROM messages WHERE {column} = $1", value
        )
        assert bounds is not None
        low, high = bounds
        rows = await conn.fetch(
            f"SELECT stanza_id FROM messages WHERE {column} = $1 AND id BETWEEN $2 AND $3"
            " ORDER BY random() LIMIT $4",
            value,
            low + (high - low) * 2 // 5,
            low + (high - low) * 3 // 5,
            n,
        )
        return [row["stanza_id"] for row in rows]
    finally:
        await conn.close()


async def _measure(pg: postgres.PostgresStores, scopes: Scopes, runs: int) -> list[Timing]:
    """Time every query kind, one after the other."""
    rng = random.Random(2)
    big = ArchiveQuery(company_id=scopes.shop, conversation_id=scopes.big, limit=PAGE)
    typical = _replace(big, conversation_id=scopes.typical)
    company = ArchiveQuery(company_id=scopes.shop, limit=PAGE)
    in_big = await _middle("conversation_id", scopes.big, runs + 1)
    in_company = await _middle("company_id", scopes.shop, runs + 1)
    now = dt.datetime.now(dt.UTC)
    # A day or an hour starting at a random minute of the archive's middle month.
    middle = now - dt.timedelta(days=DAYS / 2)

    def period(query: ArchiveQuery, hours: int) -> Callable[[int], ArchiveQuery]:
        def at(_: int) -> ArchiveQuery:
            start = middle + dt.timedelta(minutes=rng.randrange(30 * 24 * 60))
            return _replace(query, start=start, end=start + dt.timedelta(hours=hours))

        return at

    queries: list[tuple[str, Callable[[int], ArchiveQuery]]] = [
        ("conversation: newest page (<before/>)", lambda n: _replace(big, before="")),
        ("conversation: oldest page", lambda n: big),
        ("conversation: middle, RSM <after/>", lambda n: _replace(big, after=in_big[n])),
        ("conversation: middle, RSM <before/>", lambda n: _replace(big, before=in_big[n])),
        ("conversation: middle, after-id", lambda n: _replace(big, after_id=in_big[n])),
        ("conversation: a day (start, end)", period(big, 24)),
        ("conversation: since a day ago (start)", lambda n: _replace(big, start=now - DAY)),
        (f"conversation: text, rare ({RARE})", lambda n: _replace(big, text=RARE, before="")),
        (f"conversation: text, 1 % ({COMMON})", lambda n: _replace(big, text=COMMON, before="")),
        (
            "conversation: text, 1 %, middle <before/>",
            lambda n: _replace(big, text=COMMON, before=in_big[n]),
        ),
        (
            f"conversation: text, 1 in 6 ({FREQUENT})",
            lambda n: _replace(big, text=FREQUENT, before=""),
        ),
        ("typical conversation: newest page", lambda n: _replace(typical, before="")),
        ("typical conversation: text, 1 %", lambda n: _replace(typical, text=COMMON, before="")),
        ("company: newest page (<before/>)", lambda n: _replace(company, before="")),
        ("company: middle, RSM <after/>", lambda n: _replace(company, after=in_company[n])),
        ("company: a day (start, end)", period(company, 24)),
        ("company: an hour (start, end)", period(company, 1)),
        (f"company: text, rare ({RARE})", lambda n: _replace(company, text=RARE, before="")),
        (f"company: text, 1 % ({COMMON})", lambda n: _replace(company, text=COMMON, before="")),
    ]
    return [await _time(pg, name, runs, query) for name, query in queries]


def _replace(query: ArchiveQuery, **changes: Any) -> ArchiveQuery:
    """The query with some of its fields changed."""
    return dataclasses.replace(query, **changes)


async def _describe(scopes: Scopes, runs: int) -> str:
    """The sizes of the scopes measured."""
    conn = await asyncpg.connect(DSN)
    try:
        sizes = {
            row["conversation_id"]: row["n"]
            for row in await conn.fetch(
                "SELECT conversation_id, count(*) AS n FROM messages"
                " WHERE conversation_id = ANY($1::bigint[]) GROUP BY conversation_id",
                [scopes.big, scopes.typical],
            )
        }
        shop = await conn.fetchval(
            "SELECT count(*) FROM messages WHERE company_id = $1", scopes.shop
        )
    finally:
        await conn.close()
    return (
        f"the shop's archive {shop:,} messages, its big conversation"
        f" {sizes.get(scopes.big, 0):,}, a typical one {sizes.get(scopes.typical, 0):,};"
        f" {runs} runs per query\n"
    )


async def _reuse(messages: int) -> Scopes:
    """The kept archive, brought to the newest migrations (their time is printed)."""
    began = time.perf_counter()
    applied = await postgres.migrate(DSN)
    print(
        f"reusing {BENCH_DB}: migrations {', '.join(applied) or 'none'} applied"
        f" in {time.perf_counter() - began:.0f} s",
        flush=True,
    )
    conn = await asyncpg.connect(DSN)
    try:
        if applied:
            await conn.execute("ANALYZE messages")
        await _print_sizes(conn)
        return await _kept_scopes(conn, messages)
    finally:
        await conn.close()


async def main(
    messages: int, companies: int, written: int, runs: int, keep: bool, reuse: bool
) -> None:
    began = time.perf_counter()
    if not reuse:
        print(f"filling {BENCH_DB}: {messages:,} messages, {companies} companies ...", flush=True)
        await _prepare()
    pg = await postgres.connect(DSN, min_size=1, max_size=4, command_timeout=600.0)
    try:
        if reuse:
            scopes = await _reuse(messages)
        else:
            archive = await _archive(pg, messages, companies)
            await _fill(pg, archive, messages, written)
            scopes = Scopes(archive.shop.id, archive.big.id, archive.typical.id)
            print(
                f"filled in {time.perf_counter() - began:.0f} s:"
                f" {len(archive.conversations):,} conversations",
                flush=True,
            )
        print(await _describe(scopes, runs), flush=True)
        timings = await _measure(pg, scopes, runs)
    finally:
        await pg.close()
        if not keep:
            admin = await asyncpg.connect(PG_ADMIN)
            try:
                await admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
            finally:
                await admin.close()

    width = max(len(t.name) for t in timings)
    print(
        f"{'query (page of 50)':<{width}}  {'rows':>4}  {'count':>7}  {'runs':>4}"
        f"  {'p50 ms':>8}  {'p99 ms':>8}"
    )
    for t in timings:
        count = "-" if t.count is None else str(t.count)
        print(
            f"{t.name:<{width}}  {t.rows:>4}  {count:>7}  {len(t.ms):>4}"
            f"  {t.p50:>8.2f}  {t.p99:>8.2f}"
        )


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.mam", description=__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000, help="the whole archive")
    parser.add_argument("--companies", type=int, default=10, help="the shop and its neighbours")
    parser.add_argument(
        "--written", type=int, default=100_000, help="the newest, through ArchiveStore"
    )
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help=f"keep {BENCH_DB} afterwards")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help=f"measure the {BENCH_DB} that a run with --keep and the same --messages left,"
        " after applying any newer migration, instead of filling it again",
    )
    args = parser.parse_args()
    if args.companies < 2:
        parser.error("--companies: at least 2 (the shop and a neighbour)")
    asyncio.run(main(args.messages, args.companies, args.written, args.runs, args.keep, args.reuse))


if __name__ == "__main__":
    cli()
