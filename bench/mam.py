"""Archive queries on a large archive: pages of 50 from a conversation of 100,000 messages.

Run on demand (never by the test suite); PostgreSQL must be up (`make up`):

    .venv/bin/python -m bench.mam [--messages 100000] [--runs 200] [--keep]

It recreates the database ``orgchat_bench_mam``, applies the migrations and,
through the ArchiveStore (the component's own write path: batches of 1,000),
fills one company's conversation with ``--messages`` messages, 20 smaller
conversations of the same company and a neighbouring company of the same
size (so that the full-text index and the company index hold other rows
too). Bodies are drawn from a fixed vocabulary with a Zipf-like skew,
English and Russian; ``akademgorodok`` is in about 0.1 % of the big
conversation's bodies, ``delivery`` in about 1 %. Then VACUUM ANALYZE, and
each query is timed ``--runs`` times through ArchiveStore.page, which is
all the SQL a XEP-0313 query runs (the stanza-id lookup, the count and the
page); the XMPP round trip (rendering and ejabberd's routing) is not part of
it. Prints p50 and p99 in milliseconds per query.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg

from storage import postgres
from storage.models import ArchiveQuery, CompanyDraft, Conversation, NewMessage, Party

PG_ADMIN = "postgresql://orgchat:orgchat-dev@127.0.0.1:5432/postgres"
BENCH_DB = "orgchat_bench_mam"
DSN = PG_ADMIN.rsplit("/", 1)[0] + "/" + BENCH_DB
PAGE = 50
BATCH = 1000
RARE, COMMON = "akademgorodok", "delivery"

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


def _body(rng: random.Random, big: bool) -> str:
    words = [_WORDS[min(int(rng.paretovariate(1.2)) - 1, len(_WORDS) - 1)] for _ in range(12)]
    rng.shuffle(words)
    if big and rng.random() < 0.001:
        words.insert(3, RARE)
    if big and rng.random() < 0.01:
        words.insert(1, COMMON)
    return " ".join(words).capitalize() + "?"


async def _fill(pg: postgres.PostgresStores, conv: Conversation, n: int, big: bool) -> None:
    rng = random.Random(conv.id)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=n)
    for first in range(0, n, BATCH):
        batch = []
        for i in range(first, min(n, first + BATCH)):
            out = i % 3 == 2
            batch.append(
                NewMessage(
                    conversation_id=conv.id,
                    author=Party.COMPANY if out else Party.CUSTOMER,
                    sender_jid="agent@localhost" if out else conv.customer_jid,
                    body=_body(rng, big),
                    stanza_id=uuid.uuid4().hex[:24],
                    client_id=None,
                    client_key=None,
                    pending=False,
                    ts=start + dt.timedelta(seconds=i),
                )
            )
        result = await pg.archive.append_batch(batch)
        if result.delivery_id is not None:
            await pg.archive.confirm([result.delivery_id])


async def _prepare(messages: int) -> None:
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

    @property
    def p50(self) -> float:
        return statistics.median(self.ms)

    @property
    def p99(self) -> float:
        ordered = sorted(self.ms)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


async def _time(name: str, runs: int, run: Callable[[int], Awaitable[int]]) -> Timing:
    await run(0)  # warm the statement cache and the buffers once
    ms: list[float] = []
    rows = 0
    for n in range(runs):
        began = time.perf_counter()
        rows = await run(n)
        ms.append((time.perf_counter() - began) * 1000)
    return Timing(name, ms, rows)


async def main(messages: int, runs: int, keep: bool) -> None:
    print(f"filling {BENCH_DB}: {messages} messages in one conversation ...", flush=True)
    began = time.perf_counter()
    await _prepare(messages)
    pg = await postgres.connect(DSN, min_size=1, max_size=4, command_timeout=60.0)
    try:
        shop = await pg.directory.add_company(CompanyDraft(slug="bench-shop", name="Bench Shop"))
        other = await pg.directory.add_company(CompanyDraft(slug="neighbour", name="Neighbour"))
        [big, *small] = await pg.conversations.open_many(
            [(shop.id, f"customer{n}@localhost", None) for n in range(21)]
        )
        [theirs] = await pg.conversations.open_many([(other.id, "customer0@localhost", None)])
        await _fill(pg, big, messages, big=True)
        for conv in small:
            await _fill(pg, conv, 1000, big=False)
        await _fill(pg, theirs, messages, big=True)
        conn = await asyncpg.connect(DSN)
        try:
            await conn.execute("VACUUM ANALYZE messages")
            ids: list[str] = [
                r["stanza_id"]
                for r in await conn.fetch(
                    "SELECT stanza_id FROM messages WHERE conversation_id = $1 ORDER BY id",
                    big.id,
                )
            ]
        finally:
            await conn.close()
        print(f"filled in {time.perf_counter() - began:.1f} s; {runs} runs per query\n")

        rng = random.Random(1)
        one = ArchiveQuery(company_id=shop.id, conversation_id=big.id, limit=PAGE)
        whole = ArchiveQuery(company_id=shop.id, limit=PAGE)

        def timed(query: Callable[[int], ArchiveQuery]) -> Callable[[int], Awaitable[int]]:
            async def run(n: int) -> int:
                return len((await pg.archive.page(query(n))).messages)

            return run

        def middle(_: int) -> str:
            return ids[rng.randrange(len(ids) * 2 // 5, len(ids) * 3 // 5)]

        timings = [
            await _time("first page", runs, timed(lambda n: one)),
            await _time(
                "last page (<before/>)",
                runs,
                timed(lambda n: dataclasses.replace(one, before="")),
            ),
            await _time(
                "middle page (after-id)",
                runs,
                timed(lambda n: dataclasses.replace(one, after_id=middle(n))),
            ),
            await _time(
                "middle page (RSM <after/>)",
                runs,
                timed(lambda n: dataclasses.replace(one, after=middle(n))),
            ),
            await _time(
                f"full text, rare word ({RARE})",
                runs,
                timed(lambda n: dataclasses.replace(one, text=RARE)),
            ),
            await _time(
                f"full text, 1 % word ({COMMON})",
                runs,
                timed(lambda n: dataclasses.replace(one, text=COMMON)),
            ),
            await _time(
                "full text, frequent word (price)",
                runs,
                timed(lambda n: dataclasses.replace(one, text="price")),
            ),
            await _time(
                "company archive, last page",
                runs,
                timed(lambda n: dataclasses.replace(whole, before="")),
            ),
        ]
    finally:
        await pg.close()
        if not keep:
            admin = await asyncpg.connect(PG_ADMIN)
            try:
                await admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
            finally:
                await admin.close()

    width = max(len(t.name) for t in timings)
    print(f"{'query (page of 50)':<{width}}  {'rows':>4}  {'p50 ms':>7}  {'p99 ms':>7}")
    for t in timings:
        print(f"{t.name:<{width}}  {t.rows:>4}  {t.p50:>7.2f}  {t.p99:>7.2f}")


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.mam", description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help=f"keep {BENCH_DB} afterwards")
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.runs, args.keep))


if __name__ == "__main__":
    cli()
