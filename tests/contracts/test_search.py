"""DirectorySearchStore: PostgreSQL's indexed search against FakeDirectorySearchStore.

Matching (folded, literal), relevance (names starting with what is looked
for first), keyset pages, counts and the known categories and cities: the
fake the unit tests search with answers as PostgreSQL does.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Protocol

import pytest

from storage import postgres
from storage.models import Company, CompanyDraft, CompanySearch, ImportedCompany, SearchCursor
from storage.protocols import DirectorySearchStore
from tests.contracts.conftest import RealPostgres, unique
from tests.unit.fakes import FakeDirectorySearchStore

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


class Directory(Protocol):
    search: DirectorySearchStore

    async def add(self, slug: str, name: str, **fields: object) -> None: ...

    async def rename(self, slug: str, name: str, category: str) -> None: ...

    async def remove(self, slug: str) -> None: ...


class PgDirectory:
    def __init__(self, pg: postgres.PostgresStores) -> None:
        self.pg = pg
        self.search = pg.search

    async def add(self, slug: str, name: str, **fields: object) -> None:
        draft = CompanyDraft(slug=slug, name=name, **fields)  # type: ignore[arg-type]
        await self.pg.directory.add_company(draft)

    async def rename(self, slug: str, name: str, category: str) -> None:
        """Through a bulk import, as an operator renames companies."""
        draft = CompanyDraft(slug=slug, name=name, category=category)
        await self.pg.directory.import_companies([ImportedCompany(draft)])

    async def remove(self, slug: str) -> None:
        await self.pg.directory.remove_company(slug)


class FakeDirectory:
    def __init__(self) -> None:
        self.search = self.fake = FakeDirectorySearchStore()
        self._ids = itertools.count(1)

    async def add(self, slug: str, name: str, **fields: object) -> None:
        base = Company(next(self._ids), slug, name, None, "UTC", None, None, None)
        self.fake.companies[slug] = dataclasses.replace(base, **fields)  # type: ignore[arg-type]

    async def rename(self, slug: str, name: str, category: str) -> None:
        company = self.fake.companies[slug]
        self.fake.companies[slug] = dataclasses.replace(company, name=name, category=category)

    async def remove(self, slug: str) -> None:
        del self.fake.companies[slug]


@pytest.fixture
def pg(pg_or_fake: RealPostgres | None) -> Directory:
    return FakeDirectory() if pg_or_fake is None else PgDirectory(pg_or_fake.stores)


@pytest.fixture
def slug() -> str:
    return unique("s-")


async def add(pg: Directory, slug: str, name: str, **fields: object) -> None:
    await pg.add(slug, name, **fields)


async def slugs(
    pg: Directory,
    criteria: CompanySearch,
    cursor: SearchCursor | None = None,
    limit: int = 50,
) -> list[str] | None:
    page = await pg.search.page(criteria, cursor or SearchCursor(), limit)
    return None if page is None else [c.slug for c in page]


async def test_matching_is_folded_and_literal(pg: Directory, slug: str) -> None:
    city = f"Город {slug}"
    await add(pg, f"{slug}-a", "Шиномонтаж  «Колесо»", category="Tyres", city=city)
    await add(pg, f"{slug}-b", "100% Pizza_Napoli", category="Pizza", city=city)
    await add(pg, f"{slug}-c", "Apteka", category="pharmacy", city=city, accepts_requests=False)
    everyone = CompanySearch(city=f"  город   {slug.upper()} ")
    assert sorted(await slugs(pg, everyone) or []) == [f"{slug}-a", f"{slug}-b", f"{slug}-c"]

    def where(**kw: object) -> CompanySearch:
        return CompanySearch(city=city, **kw)  # type: ignore[arg-type]

    # Case and runs of spaces do not matter, in Russian as in English.
    assert await slugs(pg, where(name="ШИНОМОНТАЖ «колесо")) == [f"{slug}-a"]
    # % and _ are letters, not patterns.
    assert await slugs(pg, where(name="0% pizza_")) == [f"{slug}-b"]
    assert await slugs(pg, where(name="0%")) == []  # two letters: a word's start only
    assert await slugs(pg, where(name="0% ")) == []
    assert await slugs(pg, where(name="pi")) == [f"{slug}-b"]
    assert await slugs(pg, where(name="zz")) == []  # inside a word
    assert await slugs(pg, where(text="ph")) == [f"{slug}-c"]  # the category's start
    assert await slugs(pg, where(name="pizz__napoli")) == []
    # The whole category only; text is a part of the name, slug or category.
    assert await slugs(pg, where(category="tyre")) == []
    assert await slugs(pg, where(category="TYRES")) == [f"{slug}-a"]
    assert await slugs(pg, where(text="harma")) == [f"{slug}-c"]
    assert await slugs(pg, where(text=f"{slug}-b")) == [f"{slug}-b"]
    assert await slugs(pg, where(text="harma", takes_requests=True)) == []
    # Blank criteria are left out.
    assert len(await slugs(pg, where(name="  ", category="")) or []) == 3


async def test_names_starting_with_the_query_come_first(pg: Directory, slug: str) -> None:
    category = f"bakery-{slug}"
    for n, name in enumerate(
        ["Zebra Bread", "Abread", "Bread & Co", "Black Bread", "Old Breadbox", "Nothing"]
    ):
        await add(pg, f"{slug}-{n}", name, category=category)
    found = await slugs(pg, CompanySearch(name="bread", category=category))
    # Name or a word of it starts with "bread", by name; then the rest, by name.
    assert found == [f"{slug}-3", f"{slug}-2", f"{slug}-4", f"{slug}-0", f"{slug}-1"]
    # Without a name or text: by name only.
    assert await slugs(pg, CompanySearch(category=category)) == [
        f"{slug}-{n}" for n in (1, 3, 2, 5, 4, 0)
    ]


async def test_keyset_pages_across_ranks(pg: Directory, slug: str) -> None:
    category = f"paged-{slug}"
    names = ["Bread A", "Bread B", "Bread C", "X Bread", "Y Bread", "Abread", "Cbread"]
    for n, name in enumerate(names):
        await add(pg, f"{slug}-{n}", name, category=category)
    query = CompanySearch(name="bread", category=category)
    everything = await slugs(pg, query)
    assert everything == [f"{slug}-{n}" for n in (0, 1, 2, 3, 4, 5, 6)]
    assert everything is not None

    walked: list[str] = []
    after = None
    while True:
        page = await slugs(pg, query, SearchCursor(after=after), limit=2)
        assert page is not None
        if not page:
            break
        assert await pg.search.position(query, page[0], cap=100) == len(walked)
        walked += page
        after = page[-1]
    assert walked == everything

    before = await slugs(pg, query, SearchCursor(before=everything[4]), limit=3)
    assert before == everything[1:4]
    assert await slugs(pg, query, SearchCursor(last=True), limit=3) == everything[-3:]
    assert await slugs(pg, query, SearchCursor(index=5), limit=10) == everything[5:]
    assert await slugs(pg, query, SearchCursor(after=f"{slug}-nobody")) is None
    other = f"{slug}-other"
    await add(pg, other, "Not here", category=category)
    assert await slugs(pg, query, SearchCursor(after=other)) is None  # not a result
    assert await pg.search.position(query, other, cap=100) is None


async def test_counts_stop_at_the_cap(pg: Directory, slug: str) -> None:
    category = f"counted-{slug}"
    for n in range(7):
        await add(pg, f"{slug}-{n}", f"Shop {n}", category=category)
    query = CompanySearch(category=category)
    assert await pg.search.count(query, cap=100) == 7
    assert await pg.search.count(query, cap=5) == 5
    named = CompanySearch(category=category, name="SHOP", text="shop ")
    assert await pg.search.count(named, cap=100) == 7
    assert await pg.search.position(named, f"{slug}-2", cap=100) == 2
    assert await pg.search.position(query, f"{slug}-6", cap=100) == 6
    assert await pg.search.position(query, f"{slug}-6", cap=3) is None


async def test_known_values_are_distinct_and_spelled(pg: Directory, slug: str) -> None:
    await add(pg, f"{slug}-1", "One", category=f"Zz Tyres {slug}", city=f"Zz  Omsk {slug}")
    await add(pg, f"{slug}-2", "Two", category=f"zz tyres {slug}", city=f"Zz Omsk {slug}")
    await add(pg, f"{slug}-3", "Three", category=f"Zz Apples {slug}")
    known = await pg.search.known_values()
    mine = [c for c in known.categories if c.casefold().endswith(slug)]
    assert [c.casefold() for c in mine] == [f"zz apples {slug}", f"zz tyres {slug}"]
    assert [c for c in known.cities if c.endswith(slug)] == [f"Zz Omsk {slug}"]
    assert known.categories == tuple(sorted(known.categories, key=str.lower))


async def walk(pg: Directory, query: CompanySearch, limit: int) -> list[str]:
    """Every result, a keyset page of ``limit`` at a time."""
    walked: list[str] = []
    while True:
        after = walked[-1] if walked else None
        page = await slugs(pg, query, SearchCursor(after=after), limit=limit)
        assert page is not None
        if not page:
            return walked
        walked += page


async def test_word_starts_of_several_words(pg: Directory, slug: str) -> None:
    category = f"words-{slug}"
    names = {
        "0": "Mango Bar",
        "1": "Best Market",
        "2": "Magic Mall",  # two words starting with "ma"
        "3": "Max Max",  # one word twice
        "4": "Amazing",  # "ma" inside a word only
        "5": "Smallville",  # "mall" inside a word
        "6": "Zoo",
    }
    for n, name in names.items():
        await add(pg, f"{slug}-{n}", name, category=category)
    query = CompanySearch(name="MA", category=category)
    expected = [f"{slug}-{n}" for n in "1203"]  # by name, each once
    assert await slugs(pg, query) == expected
    for limit in (1, 2, 3):
        assert await walk(pg, query, limit) == expected
    assert await slugs(pg, query, SearchCursor(last=True), limit=3) == expected[1:]
    assert await slugs(pg, query, SearchCursor(before=expected[2]), limit=1) == [expected[1]]
    assert await slugs(pg, query, SearchCursor(index=3)) == expected[3:]
    assert await pg.search.count(query, cap=100) == 4
    assert await pg.search.position(query, expected[3], cap=100) == 3
    # Three letters or more: word starts first, then the rest of the parts.
    mall = CompanySearch(name="mall", category=category)
    assert await slugs(pg, mall) == [f"{slug}-2", f"{slug}-5"]
    assert await walk(pg, mall, 1) == [f"{slug}-2", f"{slug}-5"]
    assert await slugs(pg, CompanySearch(name="mq", category=category)) == []
    # Other criteria still apply to the word starts.
    assert await slugs(pg, CompanySearch(name="ma", category=f"{category}-none")) == []


async def test_a_count_of_word_starts_alone(pg: Directory, slug: str) -> None:
    """One or two letters and nothing else (the broad search) are counted
    through the names' words: each company once, to the cap."""
    part = "ѯѱ"  # letters no other test's names have
    query = CompanySearch(name=part.upper())
    before = await pg.search.count(query, cap=1000)
    names = ["Ѯѱ Bar", "Best ѯѱx", "Ѯѱa ѯѱb", "ѮѰ Ѯѱ", "Aѯѱ", "Zoo"]  # 4 match, one twice
    for n, name in enumerate(names):
        await add(pg, f"{slug}-{n}", name)
    assert await pg.search.count(query, cap=1000) == before + 4
    found = await slugs(pg, query, limit=1000)
    assert found is not None
    assert sorted(s for s in found if s.startswith(slug)) == [f"{slug}-{n}" for n in range(4)]
    assert await pg.search.count(query, cap=before + 3) == before + 3
    assert await pg.search.count(CompanySearch(name="ѯꙮ"), cap=1000) == 0


async def test_a_part_with_spaces(pg: Directory, slug: str) -> None:
    category = f"spaced-{slug}"
    names = {
        "0": "Tyre Service North",
        "1": "Big Tyre  Service",
        "2": "Retyre Service",  # inside a word, then a word start
        "3": "Tyre Services",
        "4": "Tyre Serv",
        "5": "Tyreservice",
    }
    for n, name in names.items():
        await add(pg, f"{slug}-{n}", name, category=category)
    query = CompanySearch(name=" tyre   SERVICE", category=category)
    expected = [f"{slug}-{n}" for n in "1032"]
    assert await slugs(pg, query) == expected
    assert await walk(pg, query, 1) == expected
    assert await slugs(pg, query, SearchCursor(last=True), limit=2) == expected[2:]
    assert await pg.search.count(query, cap=100) == 4
    assert await pg.search.position(query, f"{slug}-2", cap=100) == 3
    # A short word after the space: the same answers, another index.
    short = CompanySearch(name="tyre se", category=category)
    assert await slugs(pg, short) == [
        f"{slug}-1",
        f"{slug}-4",
        f"{slug}-0",
        f"{slug}-3",
        f"{slug}-2",
    ]


async def test_long_words_are_found_whole(pg: Directory, slug: str) -> None:
    category = f"long-{slug}"
    long_a, long_b = "a" * 130, "b" * 130
    await add(pg, f"{slug}-1", f"{long_a} {long_b}", category=category)
    await add(pg, f"{slug}-2", f"{long_a}c", category=category)
    found = await slugs(pg, CompanySearch(name=long_a[:120], category=category))
    assert found == [f"{slug}-1", f"{slug}-2"]
    assert await slugs(pg, CompanySearch(name=f"{long_a}c", category=category)) == [f"{slug}-2"]
    spaced = CompanySearch(name=f"aaaa {long_b[:120]}", category=category)
    assert await slugs(pg, spaced) == [f"{slug}-1"]
    assert await slugs(pg, CompanySearch(name=f"aaaa {long_b}b", category=category)) == []


async def test_renamed_and_removed_companies(pg: Directory, slug: str) -> None:
    category = f"renamed-{slug}"
    await add(pg, f"{slug}-1", "Tyres Novosibirsk", category=category)
    await add(pg, f"{slug}-2", "Pizza Omsk", category=category)

    def named(name: str) -> CompanySearch:
        return CompanySearch(name=name, category=category)

    await pg.rename(f"{slug}-1", "Wheels of Tomsk", category)
    assert await slugs(pg, named("ty")) == []
    assert await slugs(pg, named("tyres novosibirsk")) == []
    assert await slugs(pg, named("to")) == [f"{slug}-1"]
    assert await slugs(pg, named("of tomsk")) == [f"{slug}-1"]
    # A change of something else leaves the name's words as they are.
    await pg.rename(f"{slug}-1", "Wheels of Tomsk", f"{category}-x")
    assert await slugs(pg, CompanySearch(name="wh", category=f"{category}-x")) == [f"{slug}-1"]
    await pg.remove(f"{slug}-2")
    assert await slugs(pg, named("pi")) == []
    assert await slugs(pg, named("pizza omsk")) == []
