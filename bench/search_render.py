"""The component's CPU for one directory search's answer, without PostgreSQL
(``python -m bench.search_render``): a micro-benchmark of one process.

    .venv/bin/python -m bench.search_render [--answers 200] [--repeat 5] [--profile]

A broad XEP-0055 search returns a page of 50 companies; every millisecond of
CPU its answer takes holds the component's one event loop, and the messages
behind it (docs/performance.md, "Searching the directory"). This feeds the
search handler (:meth:`DirectoryIqHandlers.search`) ``--answers`` submitted
search forms, in Russian and in English, as slixmpp hands it parsed IQs,
over a search store that returns the same 50 companies at once (Cyrillic
and Latin names, categories and cities, some with ``& < > "``), and writes
the replies as the stream does, to a transport that keeps nothing. It
prints the CPU time (``time.process_time``) per answer, for each language,
over ``--repeat`` rounds: the form read, the page and its ``<set/>``, the
result form built, translated and serialised, the reply written. Parsing
the incoming stanza (slixmpp's, before the handler) is left out.

``--profile`` prints cProfile's 25 most expensive functions (cumulative)
for one more round of Russian answers.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dt
import pstats
import statistics
import time
from typing import cast
from xml.etree.ElementTree import Element, fromstring

from slixmpp.stanza import Iq

from component.config import ComponentSettings
from component.directory import Directory
from component.features.directory.iq import DirectoryIqHandlers
from component.features.directory.response_times import ResponseTimes
from component.routing.outbox import Outbox
from component.search import DirectorySearch
from component.xmpp import ComponentStream
from storage.models import Company, CompanySearch, KnownValues, SearchCursor
from storage.protocols import ConversationStore, DirectoryStore, ResponseTimeStore

DOMAIN = "biz.localhost"
PAGE = 50
#: A Wednesday, 12:00 UTC: some companies open, some closed.
NOON = dt.datetime(2026, 12, 9, 12, 0, tzinfo=dt.UTC)
NAMES = [
    "Шиномонтаж «Колесо»",
    'Pizza "Napoli" & Co',
    "Аптека Здоровье",
    "Coffee <House>",
    "Пекарня Берёзка",
    "Golden Wheel Tyre Service",
    "Автосервис Мастер & Сын",
    "Green Leaf Flowers",
    "Книжный магазин Сибирь",
    "Baikal Dental Clinic",
]
CATEGORIES = ["tyres", "pizza", "pharmacy", "coffee & tea", "Пекарня", "цветы", None]
CITIES = ["Новосибирск", "Moscow", "Санкт-Петербург", "Berlin", "Omsk", None]
HOURS = ["Mo-Fr 09:00-18:00", "24/7", "Mo-Su 10:00-22:00", "Tu-Su 10:00-19:00; Mo off", None]
ZONES = ["Asia/Novosibirsk", "Europe/Moscow", "Europe/Berlin", "Asia/Omsk"]


def companies(n: int = PAGE) -> list[Company]:
    """``n`` companies, deterministic: every name, category, city and time zone in turn."""
    return [
        Company(
            id=i,
            slug=f"company-{i:03d}",
            name=f"{NAMES[i % len(NAMES)]} {i}",
            email=None,
            timezone=ZONES[i % len(ZONES)],
            hours=HOURS[i % len(HOURS)],
            category=CATEGORIES[i % len(CATEGORIES)],
            city=CITIES[i % len(CITIES)],
        )
        for i in range(n)
    ]


class PageStore:
    """A search store that answers every search with the same page at once."""

    def __init__(self, page: list[Company]) -> None:
        self.companies = page

    async def page(
        self, criteria: CompanySearch, cursor: SearchCursor, limit: int
    ) -> list[Company] | None:
        return self.companies[:limit]

    async def count(self, criteria: CompanySearch, cap: int) -> int:
        return cap

    async def position(self, criteria: CompanySearch, slug: str, cap: int) -> int | None:
        return 0

    async def known_values(self) -> KnownValues:
        return KnownValues((), ())


class Transport(asyncio.Transport):
    """What the stream writes to: counts the bytes, keeps nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += len(data)

    def is_closing(self) -> bool:
        return False


def stream() -> ComponentStream:
    """A component stream past its handshake, writing to a :class:`Transport`."""
    out = ComponentStream(ComponentSettings(domain=DOMAIN))
    out._session_started = True  # what the handshake sets
    out.connected_event.set()
    out.transport = Transport()
    return out


def handlers(out: ComponentStream) -> DirectoryIqHandlers:
    # A search of the domain reads no company: the directory, the
    # conversations and the response times stay untouched.
    return DirectoryIqHandlers(
        domain=DOMAIN,
        directory=Directory(cast(DirectoryStore, None)),
        search=DirectorySearch(PageStore(companies()), Directory(cast(DirectoryStore, None))),
        conversations=cast(ConversationStore, None),
        response_times=ResponseTimes(cast(ResponseTimeStore, None)),
        outbox=Outbox(out.write, out.settings.max_stanza_size),
        now=lambda: NOON,
    )


def request(lang: str, n: int) -> Element:
    """A submitted search for a broad part of a name, as slixmpp parsed it."""
    return fromstring(
        f'<iq xmlns="jabber:component:accept" type="set" id="s{n}" xml:lang="{lang}"'
        f' from="anna@localhost/phone" to="{DOMAIN}">'
        '<query xmlns="jabber:iq:search"><x xmlns="jabber:x:data" type="submit">'
        '<field var="FORM_TYPE" type="hidden"><value>jabber:iq:search</value></field>'
        '<field var="name"><value>ма</value></field>'
        "</x></query></iq>"
    )


async def answer(search: DirectoryIqHandlers, out: ComponentStream, iqs: list[Iq]) -> float:
    """CPU seconds to answer ``iqs`` one after the other, replies written."""
    start = time.process_time()
    for iq in iqs:
        await search.search(iq)
        # What slixmpp's send loop does with what was queued: write it.
        while not out.waiting_queue.empty():
            data, _filters = out.waiting_queue.get_nowait()
            out.send_raw(data)
    return time.process_time() - start


async def run(answers: int, repeat: int, profile: bool) -> None:
    out = stream()
    search = handlers(out)
    transport = cast(Transport, out.transport)
    for lang in ("ru", "en"):
        per_answer: list[float] = []
        for round_ in range(repeat + 1):  # the first round warms the caches up
            iqs = [Iq(out, request(lang, n)) for n in range(answers)]
            seconds = await answer(search, out, iqs)
            if round_:
                per_answer.append(seconds / answers * 1000)
        print(
            f"{lang}: {statistics.median(per_answer):.3f} ms per answer "
            f"(median of {repeat} rounds of {answers}; "
            f"min {min(per_answer):.3f}, max {max(per_answer):.3f}), "
            f"{transport.written // ((repeat + 1) * answers)} bytes each"
        )
        transport.written = 0
    if profile:
        iqs = [Iq(out, request("ru", n)) for n in range(answers)]
        profiler = cProfile.Profile()
        profiler.enable()
        await answer(search, out, iqs)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.search_render", description=__doc__)
    parser.add_argument("--answers", type=int, default=200, help="answers per round")
    parser.add_argument("--repeat", type=int, default=5, help="rounds measured per language")
    parser.add_argument("--profile", action="store_true", help="profile one more round")
    args = parser.parse_args()
    asyncio.run(run(args.answers, args.repeat, args.profile))


if __name__ == "__main__":
    cli()
