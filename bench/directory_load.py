"""The directory at city size, with the component running (``python -m
bench.directory search``): search and paging latency, start-up and memory,
and what broad searches do to everybody's messages.

    .venv/bin/python -m bench.directory search [--companies 100000] [--rate 1000]
                                               [--seconds 6] [--pairs 3] [--repeat 100] [--reuse]
                                               [--database NAME] [--out FILE]

Against the development stack (``make up``), on the benchmark's own domain
and database (``biz-bench.localhost``, ``orgchat_bench``; see bench/run.py),
or the database ``--database`` names (created and migrated if need be, as
bench/run.py prepares its own; the test suite's smoke run uses
``orgchat_bench_smoke``, so that it never replaces a kept fill):

1. fills the directory with ``--companies`` synthetic companies straight in
   SQL (names of a few words, Russian and English, 40 categories, 60 cities,
   opening hours), plus the benchmark's companies with agents, then VACUUM
   ANALYZE and CHECKPOINT (what autovacuum and the checkpointer do in
   production long before anyone searches; ``fill_s`` includes them);
   ``--reuse`` keeps what an earlier run filled, if it has as many companies;
2. starts a component process and times it until it is ready (``startup_s``),
   then reads its resident memory (``rss_mb``);
3. times XEP-0055 searches of three kinds, one at a time (``search``: p50 and
   p99 in ms, the slowest, and the CPU one search costs the component,
   PostgreSQL and ejabberd): a unique part of a name, a category and a
   city, a part of a name that thousands of companies share; and pages of
   disco#items;
4. sends ``--rate`` messages per second for ``--seconds`` (customer ->
   company -> agent, receipts on) and reports their p99 alone and with 10
   broad searches per second running (``messages``), ``--pairs`` steps of
   each, alternated, after a step of the same messages that is not measured
   (a warm-up); ``p99_ratio`` compares the medians of the two.

Prints one JSON document and writes it to ``--out`` (by default
``bench/results/directory-search.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

from bench.loadgen import RawClient
from bench.procstat import CpuMeter, ejabberd_pids, postgres_pids
from bench.run import (
    BENCH_DB,
    DOMAIN,
    PASSWORD,
    RESULTS,
    RUN_IDS,
    VHOST_PLAIN,
    Component,
    Settings,
    Step,
    connect,
    database_url,
    ensure_account,
    one_benchmark_at_a_time,
    percentile,
    prepare,
    step,
    wait_for_rosters,
)

NS_SEARCH = "jabber:iq:search"
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
WORDS = [
    "Шина",
    "Колесо",
    "Аптека",
    "Пицца",
    "Ремонт",
    "Сервис",
    "Мастер",
    "Центр",
    "Дом",
    "Сад",
    "Авто",
    "Вело",
    "Книга",
    "Мода",
    "Tyre",
    "Wheel",
    "Pharmacy",
    "Pizza",
    "Repair",
    "Service",
    "Master",
    "Centre",
    "Home",
    "Garden",
    "Auto",
    "Bike",
    "Book",
    "Style",
    "Nord",
    "Sibir",
    "Ural",
    "Volga",
    "Baikal",
    "Ob",
    "Irtysh",
    "Tomsk",
    "Altai",
    "Sever",
    "Yug",
    "Vostok",
    "Zapad",
]
CITIES = [f"City {n}" for n in range(60)]
CATEGORIES = [f"category {n}" for n in range(40)]
#: A part of a name that thousands of companies share (broad).
BROAD = "ма"


async def fill(companies: int, database: str) -> None:
    """``companies`` synthetic companies, straight in SQL (indexes built as it goes), vacuumed."""
    db = await asyncpg.connect(database_url(database))
    try:
        await db.execute("DELETE FROM companies WHERE slug LIKE 'dir-%'")
        await db.execute(
            """
            INSERT INTO companies (slug, name, timezone, hours, category, city)
            SELECT 'dir-' || n,
                   ($2::text[])[1 + (n * 7) % array_length($2, 1)] || ' '
                   || ($2::text[])[1 + (n / 41 * 13) % array_length($2, 1)] || ' ' || n,
                   'Asia/Novosibirsk',
                   CASE WHEN n % 3 = 0 THEN '24/7' ELSE 'Mo-Fr 09:00-18:00; Sa 10:00-14:00' END,
                   ($3::text[])[1 + n % array_length($3, 1)],
                   ($4::text[])[1 + (n / 7) % array_length($4, 1)]
              FROM generate_series(1, $1) AS n
            """,
            companies,
            WORDS,
            CATEGORIES,
            CITIES,
        )
        # What autovacuum does in production after so many inserts (it is off
        # on the development machines): hint bits, the visibility map (the
        # words' index is read alone) and statistics, so that the searches
        # measure a settled directory, not the aftermath of the fill.
        await db.execute("VACUUM ANALYZE companies, company_words")
    finally:
        await db.close()
    # And what the checkpointer would have done long before a measurement: the
    # fill's and the vacuum's gigabyte of pages written out now, not during it.
    checkpoint = await asyncio.create_subprocess_exec(
        *("runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-c", "CHECKPOINT"),
        cwd="/",
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await checkpoint.communicate()
    if checkpoint.returncode != 0:
        print(f"directory: no CHECKPOINT ({stderr.decode().strip()})", flush=True)


async def filled(companies: int, database: str) -> bool:
    """Whether ``database`` holds the ``companies`` of a ``fill`` already."""
    db = await asyncpg.connect(database_url(database))
    try:
        held = await db.fetchval("SELECT count(*) FROM companies WHERE slug LIKE 'dir-%'")
    finally:
        await db.close()
    return bool(held == companies)


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return round(int(match.group(1)) / 1024, 1) if match else 0.0


class Asker:
    """One account that sends IQs and times their answers."""

    def __init__(self, client: RawClient) -> None:
        self.client = client
        self.waiting: dict[str, asyncio.Future[float]] = {}
        self.sent_at: dict[str, float] = {}
        self._n = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.client.reader is not None
        data = b""
        while chunk := await self.client.reader.read(262144):
            now = time.monotonic()
            data += chunk
            for match in re.finditer(rb"<iq\b[^>]*>", data):
                tag = match.group(0)
                found = re.search(rb"\bid=['\"](q\d+)['\"]", tag)
                iq_id = found.group(1).decode() if found else ""
                future = self.waiting.pop(iq_id, None)
                if future is None or future.done():
                    continue
                if re.search(rb"\btype=['\"]error['\"]", tag):
                    # A failed search is not a fast one: the run stops.
                    error = data[match.start() : match.start() + 600].decode(errors="replace")
                    future.set_exception(RuntimeError(f"search {iq_id} failed: {error}"))
                else:
                    future.set_result((now - self.sent_at.pop(iq_id)) * 1000)
            data = data[data.rfind(b"<") :] if b"<" in data else b""

    async def ask(self, payload: str, iq_type: str = "set") -> float:
        self._n += 1
        iq_id = f"q{self._n}"
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[iq_id] = future
        self.sent_at[iq_id] = time.monotonic()
        self.client.write(
            f"<iq type='{iq_type}' id='{iq_id}' to='{DOMAIN}'>{payload}</iq>".encode()
        )
        return await asyncio.wait_for(future, 30)


def search_form(**fields: str) -> str:
    values = "".join(
        f"<field var='{var}'><value>{value}</value></field>" for var, value in fields.items()
    )
    return (
        f"<query xmlns='{NS_SEARCH}'><x xmlns='jabber:x:data' type='submit'>"
        f"<field var='FORM_TYPE' type='hidden'><value>{NS_SEARCH}</value></field>{values}"
        "</x></query>"
    )


def _name(n: int) -> str:
    """The name ``fill`` gave company ``dir-<n>``."""
    return f"{WORDS[(n * 7) % len(WORDS)]} {WORDS[(n // 41 * 13) % len(WORDS)]} {n}"


def figures(latencies: list[float]) -> dict[str, Any]:
    """p50 and p99, and the slowest few with their places in the run (the
    first ones met cold caches)."""
    slowest = sorted(range(len(latencies)), key=latencies.__getitem__, reverse=True)[:5]
    return {
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "slowest": [[n, round(latencies[n], 1)] for n in slowest],
    }


async def searches(
    asker: Asker, companies: int, repeat: int, component_pid: int
) -> dict[str, dict[str, Any]]:
    """Each kind ``repeat`` times, one at a time: latencies, and the CPU one
    search costs each process (``cpu_ms``: component, PostgreSQL, ejabberd)."""
    kinds: dict[str, Callable[[int], str]] = {
        "unique_substring": lambda n: search_form(name=_name(1 + (n * 7919) % companies)),
        "category_and_city": lambda n: search_form(
            category=CATEGORIES[n % len(CATEGORIES)], city=CITIES[n % len(CITIES)]
        ),
        "broad_substring": lambda n: search_form(name=BROAD),
        "broad_open_now": lambda n: search_form(name=BROAD, **{"open-now": "true"}),
        "disco_items_page": lambda n: f"<query xmlns='{NS_DISCO_ITEMS}'/>",
    }
    meter = CpuMeter(
        {"component": lambda: [component_pid], "postgres": postgres_pids, "ejabberd": ejabberd_pids}
    )
    out = {}
    for kind, payload in kinds.items():
        iq_type = "get" if kind == "disco_items_page" else "set"
        meter.start()
        latencies = [await asker.ask(payload(n), iq_type) for n in range(repeat)]
        used = meter.stop()
        out[kind] = figures(latencies) | {
            "cpu_ms": {name: round(ms / repeat, 2) for name, ms in used.items()}
        }
    return out


async def messages_with_searches(
    topo: Any, asker: Asker, rate: float, seconds: float, per_s: float, pairs: int
) -> dict[str, Any]:
    """The messages' p99 alone and with broad searches running, ``pairs``
    times each, alternated: a stall of the machine during one step (seen
    here: one step in five, searches and messages slowed together) moves one
    measurement of each, not the median the ratio is taken of."""
    settings = Settings(
        runs=1, senders=len(topo.senders), step_s=seconds, drain_s=3.0, first_rate=rate,
        max_steps=1, refine=0,
    )  # fmt: skip
    meter = CpuMeter({"ejabberd": ejabberd_pids, "postgres": postgres_pids})
    # Warm-up, not measured, as bench.run does: the first messages of a fresh
    # process meet cold caches and pools, which "alone" would be charged for.
    await step(topo, meter, rate, settings, next(RUN_IDS))
    alone: list[Step] = []
    loaded: list[Step] = []
    search_latencies: list[float] = []
    for _ in range(pairs):
        alone.append(await step(topo, meter, rate, settings, next(RUN_IDS)))
        stop = asyncio.Event()

        async def searching(stop: asyncio.Event = stop) -> None:
            while not stop.is_set():
                started = time.monotonic()
                search_latencies.append(await asker.ask(search_form(name=BROAD)))
                await asyncio.sleep(max(0.0, 1 / per_s - (time.monotonic() - started)))

        searcher = asyncio.create_task(searching())
        loaded.append(await step(topo, meter, rate, settings, next(RUN_IDS)))
        stop.set()
        await searcher
    alone_p99 = statistics.median(s.p99_ms for s in alone)
    loaded_p99 = statistics.median(s.p99_ms for s in loaded)
    return {
        "rate": rate,
        "alone": _steps(alone, alone_p99),
        "with_searches": {
            **_steps(loaded, loaded_p99),
            "searches_per_s": per_s,
            "search": figures(search_latencies) if search_latencies else None,
        },
        "p99_ratio": round(loaded_p99 / alone_p99, 2) if alone_p99 else None,
    }


def _steps(steps: list[Step], median_p99: float) -> dict[str, Any]:
    """``p99_ms``: the median of the steps' p99s (``p99s_ms``, in order)."""
    return {
        "p99_ms": median_p99,
        "p99s_ms": [s.p99_ms for s in steps],
        "delivered": sum(s.delivered for s in steps),
        "sent": sum(s.sent for s in steps),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    async with one_benchmark_at_a_time():
        return await measure(args)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    n = args.senders
    await prepare(["C"], n, database=args.database)
    ensure_account("bench-q0", VHOST_PLAIN)
    fill_s = None
    if args.reuse and await filled(args.companies, args.database):
        print(f"directory: reusing the {args.companies} companies of a previous run", flush=True)
    else:
        print(f"directory: filling {args.companies} companies in {args.database}", flush=True)
        started = time.monotonic()
        await fill(args.companies, args.database)
        fill_s = round(time.monotonic() - started, 1)
    component = Component.orgchat(own_archives=True, database=args.database)
    try:
        started = time.monotonic()
        component.start()
        startup_s = round(time.monotonic() - started, 2)
        wait_for_rosters(
            [f"bench-r{i}@{VHOST_PLAIN}" for i in range(n)],
            [f"bench-c{i}@{DOMAIN}" for i in range(n)],
        )
        client = RawClient(f"bench-q0@{VHOST_PLAIN}", PASSWORD)
        await client.login(presence=False)
        asker = Asker(client)
        asker.start()
        print("directory: searching", flush=True)
        result: dict[str, Any] = {
            "database": args.database,
            "companies": args.companies,
            "fill_s": fill_s,
            "startup_s": startup_s,
            "rss_mb_at_start": rss_mb(component.pid),
            "search": await searches(asker, args.companies, args.repeat, component.pid),
        }
        print("directory: messages, alone then with broad searches", flush=True)
        topo = await connect("C", n)
        result["messages"] = await messages_with_searches(
            topo, asker, args.rate, args.seconds, args.searches_per_s, args.pairs
        )
        result["rss_mb_at_end"] = rss_mb(component.pid)
        for c in [*topo.senders, *topo.receivers, client]:
            await c.close()
        return result
    finally:
        component.stop()


def database_name(value: str) -> str:
    """A plain PostgreSQL identifier: it is written into CREATE DATABASE."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", value):
        raise argparse.ArgumentTypeError(f"not a plain database name: {value!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--companies", type=int, default=100_000, metavar="N")
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--rate", type=float, default=1000.0, help="messages per second")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--searches-per-s", type=float, default=10.0)
    parser.add_argument(
        "--pairs",
        type=int,
        default=3,
        help="steps of messages alone and with searches, alternated (medians compared)",
    )
    parser.add_argument("--repeat", type=int, default=100, help="searches of each kind")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the companies a previous run filled, if as many"
    )
    parser.add_argument(
        "--database",
        type=database_name,
        default=BENCH_DB,
        help=f"the database to fill and run the component on (default {BENCH_DB}; "
        "created and migrated if need be)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "directory-search.json")


async def search_command(args: argparse.Namespace) -> None:
    result = await main_async(args)
    text = json.dumps(result, indent=2)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
