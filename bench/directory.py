"""The directory at city size: importing a synthetic directory of many companies.

Run on demand (never by the test suite); PostgreSQL must be up (`make up`):

    .venv/bin/python -m bench.directory import [--companies 100000] [--format csv]
                                               [--keep]

``import`` writes a synthetic import file (deterministic): companies of a
dozen categories (tyres, pizza, pharmacy, ...) in Russian and English, in
ten cities and their time zones (Novosibirsk, Moscow, ...), with opening
hours, phones, web sites, street addresses, and a quarter of them with one
to three agents (some agents serve several companies). It recreates the
database ``orgchat_bench_directory`` and applies the migrations, then
measures:

* **validate**: reading and validating the file in this process, writing
  nothing (:func:`component.features.directory.input.read_import`);
* **import**: ``orgchat import FILE`` as a process of its own, as an
  operator runs it: reading, validating and writing overlap (COPY takes
  the rows as they are validated); its CPU time and peak RSS, and the CPU
  time of every PostgreSQL process meanwhile (the server is shared: other
  work on it counts too);
* **re-import**: the same file again, which changes nothing;
* **writing**: import minus validate, the time the writes add.

Each with rows per second. The database is dropped afterwards unless
``--keep``. ``search`` (:mod:`bench.directory_load`) runs the component on a
directory of that size: search and disco#items latency, start-up, memory,
and message latency beside broad searches.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import dataclasses
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg

from bench import directory_load
from bench.procstat import CpuMeter, postgres_pids
from bench.run import PG_ADMIN, database_url, exit_on_signals
from component.features.directory.input import FIELDS, BadRows, read_import
from storage import postgres

REPO = Path(__file__).resolve().parents[1]
BENCH_DB = "orgchat_bench_directory"
DSN = database_url(BENCH_DB)
#: ejabberd.vhost of the default configuration: the agents' accounts live there.
AGENTS_HOST = "localhost"
#: How often PostgreSQL's CPU is read during an import.
SAMPLE_S = 0.1

#: (slug part, English city, Russian city, time zone, phone prefix)
CITIES = [
    ("nsk", "Novosibirsk", "Новосибирск", "Asia/Novosibirsk", "+7 383"),
    ("msk", "Moscow", "Москва", "Europe/Moscow", "+7 495"),
    ("spb", "Saint Petersburg", "Санкт-Петербург", "Europe/Moscow", "+7 812"),
    ("ekb", "Yekaterinburg", "Екатеринбург", "Asia/Yekaterinburg", "+7 343"),
    ("kzn", "Kazan", "Казань", "Europe/Moscow", "+7 843"),
    ("omsk", "Omsk", "Омск", "Asia/Omsk", "+7 3812"),
    ("tomsk", "Tomsk", "Томск", "Asia/Tomsk", "+7 3822"),
    ("krsk", "Krasnoyarsk", "Красноярск", "Asia/Krasnoyarsk", "+7 391"),
    ("vvo", "Vladivostok", "Владивосток", "Asia/Vladivostok", "+7 423"),
    ("ber", "Berlin", "Berlin", "Europe/Berlin", "+49 30"),
]
#: (category, what the English name calls it, what the Russian one does)
CATEGORIES = [
    ("tyres", "Tyre Service", "Шиномонтаж"),
    ("pizza", "Pizzeria", "Пиццерия"),
    ("pharmacy", "Pharmacy", "Аптека"),
    ("bakery", "Bakery", "Пекарня"),
    ("flowers", "Flowers", "Цветы"),
    ("car-repair", "Car Repair", "Автосервис"),
    ("dentist", "Dental Clinic", "Стоматология"),
    ("coffee", "Coffee House", "Кофейня"),
    ("books", "Bookshop", "Книжный магазин"),
    ("hardware", "Hardware Store", "Хозтовары"),
    ("pets", "Pet Shop", "Зоомагазин"),
    ("notary", "Notary", "Нотариус"),
]
BRANDS = [
    "Napoli", "Siberia", "Akademgorodok", "Golden Wheel", "Green Leaf", "Aurora", "Baikal",
    "Колесо", "Здоровье", "Сибирь", "Уют", "Северный", "Берёзка", "Ромашка", "Мастер", "Лидер",
]  # fmt: skip
STREETS = [
    "Krasny prospekt", "ul. Lenina", "ul. Kirova", "Nevsky prospekt", "Tverskaya ul.",
    "ул. Гоголя", "ул. Советская", "Морской проспект", "ул. Пирогова", "Karl-Marx-Allee",
]  # fmt: skip
HOURS = [
    "Mo-Fr 09:00-18:00",
    "Mo-Fr 09:00-18:00; Sa 10:00-14:00",
    "Mo-Su 10:00-22:00",
    "24/7",
    "Mo-Sa 08:00-20:00; Su 10:00-18:00",
    "Mo-Fr 08:00-12:00,13:00-17:00",
    "Mo-Th 11:00-23:00; Fr-Sa 11:00-02:00; Su 12:00-22:00",
    "Tu-Su 10:00-19:00; Mo off",
    "Mo-Fr 10:00-20:00; Sa-Su 11:00-17:00",
    "Mo,We,Fr 09:00-15:00",
]
FORMATS = ("csv", "json", "jsonl")


@dataclasses.dataclass
class Directory:
    """What was generated."""

    path: Path
    companies: int
    agents: int
    seconds: float


def _companies(n: int, seed: int) -> Iterator[dict[str, Any]]:
    """``n`` companies as an import file's objects (deterministic for a seed)."""
    rng = random.Random(seed)
    pool = max(1, n // 3)  # agents' accounts: some serve several companies
    for i in range(n):
        city_slug, city_en, city_ru, timezone, prefix = rng.choice(CITIES)
        category, kind_en, kind_ru = rng.choice(CATEGORIES)
        russian = rng.random() < 0.6
        brand = rng.choice(BRANDS)
        name = f"{kind_ru} «{brand}»" if russian else f"{brand} {kind_en}"
        if rng.random() < 0.3:
            name += f" №{rng.randint(1, 99)}" if russian else f" #{rng.randint(1, 99)}"
        slug = f"{category}-{city_slug}-{i}"
        company: dict[str, Any] = {
            "slug": slug,
            "name": name,
            "city": city_ru if russian else city_en,
            "category": category,
            "timezone": timezone,
        }
        if rng.random() < 0.85:
            company["hours"] = rng.choice(HOURS)
        if rng.random() < 0.9:
            digits = f"{rng.randint(200, 399)}-{rng.randint(0, 99):02d}-{rng.randint(0, 99):02d}"
            company["phone"] = f"{prefix} {digits}"
        if rng.random() < 0.6:
            company["email"] = f"info@{slug}.example.ru"
        if rng.random() < 0.4:
            company["url"] = f"https://{slug}.example.ru/"
        if rng.random() < 0.85:
            company["address"] = f"{rng.choice(STREETS)} {rng.randint(1, 250)}"
        if rng.random() < 0.25:
            jids = {f"agent{rng.randrange(pool)}@{AGENTS_HOST}" for _ in range(rng.randint(1, 3))}
            company["agents"] = [
                {"jid": jid, "role": "admin" if k == 0 and rng.random() < 0.3 else "agent"}
                for k, jid in enumerate(sorted(jids))
            ]
        yield company


def _csv_row(company: dict[str, Any]) -> list[str]:
    agents = " ".join(
        a["jid"] + (":admin" if a["role"] == "admin" else "") for a in company.get("agents", [])
    )
    return [company.get(field, "") for field in FIELDS] + [agents]


def generate(directory: Path, n: int, fmt: str, seed: int) -> Directory:
    """Write ``n`` companies to ``directory/companies.<fmt>``, one at a time."""
    began = time.perf_counter()
    path = directory / f"companies.{fmt}"
    agents = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        if fmt == "csv":
            writer = csv.writer(out)
            writer.writerow([*FIELDS, "agents"])
        elif fmt == "json":
            out.write("[\n")
        for i, company in enumerate(_companies(n, seed)):
            agents += len(company.get("agents", []))
            if fmt == "csv":
                writer.writerow(_csv_row(company))
            else:
                separator = ",\n" if fmt == "json" and i else ""
                out.write(separator + json.dumps(company, ensure_ascii=False))
                if fmt == "jsonl":
                    out.write("\n")
        if fmt == "json":
            out.write("\n]\n")
    return Directory(path, n, agents, time.perf_counter() - began)


async def _recreate_database() -> None:
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {BENCH_DB}")
    finally:
        await admin.close()
    await postgres.migrate(DSN)


async def _drop_database() -> None:
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    finally:
        await admin.close()


async def _counts() -> tuple[int, int]:
    conn = await asyncpg.connect(DSN)
    try:
        companies = await conn.fetchval("SELECT count(*) FROM companies")
        agents = await conn.fetchval("SELECT count(*) FROM agents")
    finally:
        await conn.close()
    return companies, agents


@dataclasses.dataclass
class Phase:
    name: str
    rows: int
    seconds: float
    cpu_s: float | None = None  #: of the process that read the file
    pg_cpu_s: float | None = None  #: of every PostgreSQL process meanwhile
    peak_rss_mb: float | None = None
    note: str = ""

    def cells(self) -> list[str]:
        def opt(value: float | None, fmt: str) -> str:
            return "-" if value is None else format(value, fmt)

        return [
            self.name,
            f"{self.seconds:.1f}",
            f"{self.rows / self.seconds:,.0f}" if self.seconds else "-",
            opt(self.cpu_s, ".1f"),
            opt(self.pg_cpu_s, ".1f"),
            opt(self.peak_rss_mb, ".0f"),
            self.note,
        ]


def validate(path: Path, rows: int) -> Phase:
    """Read and validate the file here, writing nothing."""
    wall, cpu = time.perf_counter(), time.process_time()
    bad = BadRows(skip=False)
    for _ in bad.good(read_import(path, AGENTS_HOST)):
        pass
    return Phase(
        "validate (in process)",
        bad.passed,
        time.perf_counter() - wall,
        cpu_s=time.process_time() - cpu,
        note="" if bad.passed == rows else f"expected {rows} rows",
    )


def orgchat_import(name: str, path: Path, rows: int) -> Phase:
    """``orgchat import FILE`` as its own process: wall time, its CPU and peak RSS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORGCHAT_")}
    env["ORGCHAT_DATABASE_URL"] = DSN
    meter = CpuMeter({"postgres": postgres_pids})
    with tempfile.TemporaryFile() as out:
        meter.start()
        began = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "component", "import", str(path)],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        # wait4, not wait: the child's own resource usage (CPU, peak RSS).
        try:
            while True:
                meter.sample()  # its PostgreSQL backend exits with it
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                time.sleep(SAMPLE_S)
        except BaseException:  # the benchmark is stopping (exit_on_signals): the import too
            proc.kill()
            proc.wait()
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - began
        pg_ms = meter.stop()["postgres"]
        out.seek(0)
        said = out.read().decode().strip()
    if proc.returncode != 0:
        raise SystemExit(f"bench: orgchat import failed ({proc.returncode}): {said}")
    return Phase(
        name,
        rows,
        seconds,
        cpu_s=usage.ru_utime + usage.ru_stime,
        pg_cpu_s=pg_ms / 1000,
        peak_rss_mb=usage.ru_maxrss / 1024,  # kilobytes on Linux
        note=said.removeprefix("imported "),
    )


def _table(phases: list[Phase]) -> str:
    """Aligned columns: the phase's name to the left, figures to the right, the note last."""
    header = ["phase", "s", "rows/s", "CPU s", "PostgreSQL CPU s", "peak RSS MB", ""]
    rows = [header, *(p.cells() for p in phases)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            [
                r[0].ljust(widths[0]),
                *(c.rjust(w) for c, w in zip(r[1:-1], widths[1:-1], strict=True)),
                r[-1],
            ]
        ).rstrip()
        for r in rows
    )


async def import_command(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="orgchat-bench-") as tmp:
        made = generate(Path(tmp), args.companies, args.format, args.seed)
        size_mb = made.path.stat().st_size / 1e6
        print(
            f"{made.companies:,} companies with {made.agents:,} agents, {args.format}, "
            f"{size_mb:,.0f} MB, generated in {made.seconds:.1f} s",
            flush=True,
        )
        await _recreate_database()
        try:
            checked = validate(made.path, made.companies)
            first = orgchat_import("import (orgchat import)", made.path, made.companies)
            companies, agents = await _counts()
            again = orgchat_import("re-import (nothing changes)", made.path, made.companies)
        finally:
            if not args.keep:
                await _drop_database()
    writing = Phase("writing (import - validate)", made.companies, first.seconds - checked.seconds)
    print(_table([checked, first, writing, again]))
    print(f"in {BENCH_DB}: {companies:,} companies, {agents:,} agents")


#: Subcommand -> what runs it.
COMMANDS: dict[str, Callable[[argparse.Namespace], Any]] = {
    "import": import_command,
    "search": directory_load.search_command,
}


def cli() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.directory", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="import a synthetic directory with orgchat import")
    imp.add_argument("--companies", type=int, default=100_000, metavar="N")
    imp.add_argument("--format", choices=FORMATS, default="csv")
    imp.add_argument("--seed", type=int, default=1, help="of the synthetic directory")
    imp.add_argument("--keep", action="store_true", help=f"keep {BENCH_DB} afterwards")
    directory_load.add_arguments(
        sub.add_parser("search", help="search, start-up, memory and messages with the component")
    )
    args = parser.parse_args()
    exit_on_signals()
    asyncio.run(COMMANDS[args.command](args))


if __name__ == "__main__":
    cli()
