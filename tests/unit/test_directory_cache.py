"""The bounded directory: companies with agents always in memory, the others
loaded when a message (or an IQ) needs them, a bounded cache of both kinds of
answer, and the arrival order of messages kept while a company is read."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from component import directory as directory_module
from component.directory import Directory
from storage.errors import Unavailable
from storage.models import Company
from tests.unit.fakes import FakeDirectoryStore
from tests.unit.test_routing import RECEIPT_REQ, chat, error_condition, routing_env

pytestmark = pytest.mark.asyncio


class CountingStore(FakeDirectoryStore):
    """Counts the reads by slug; ``down`` makes them fail."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[list[str]] = []
        self.down = False

    async def companies_by_slug(self, slugs: Sequence[str]) -> list[Company]:
        if self.down:
            raise Unavailable("fake outage")
        self.reads.append(sorted(slugs))
        return await super().companies_by_slug(slugs)


async def test_only_companies_with_agents_are_loaded_at_start() -> None:
    store = CountingStore()
    store.add("pizza", "Pizza Napoli", ["mario@localhost"])
    store.add("quiet", "Quiet Shop")
    directory = Directory(store)
    await directory.reload(None)
    assert directory.company("pizza") is not None
    assert directory.company("quiet") is None and not directory.knows("quiet")

    await directory.load(["quiet", "nobody", "pizza", "quiet"])
    assert store.reads == [["nobody", "quiet"]]  # one query, for what was unknown
    quiet = directory.company("quiet")
    assert quiet is not None and directory.company_by_id(quiet.id) == quiet
    assert directory.company("nobody") is None and directory.knows("nobody")
    await directory.load(["quiet", "nobody"])
    assert len(store.reads) == 1  # both answers remembered


async def test_a_new_company_is_found_once_it_is_announced() -> None:
    store = CountingStore()
    directory = Directory(store)
    await directory.reload(None)
    assert await directory.find("late") is None
    store.add("late", "Late Shop")
    assert await directory.find("late") is None  # "no such company" is remembered...
    await directory.reload("late")  # ...until the directory says it changed
    found = await directory.find("late")
    assert found is not None and found.name == "Late Shop"


async def test_a_company_that_gains_an_agent_stays_in_memory() -> None:
    store = CountingStore()
    store.add("quiet", "Quiet Shop")
    directory = Directory(store)
    await directory.reload(None)
    company = store.companies["quiet"]
    store.agents[company.id] = []
    store.add("quiet", "Quiet Shop", ["olga@localhost"])
    await directory.reload("quiet")
    staffed = directory.company("quiet")
    assert staffed is not None and directory.is_agent(staffed.id, "olga@localhost")
    assert [jid for _, jid in directory.all_agents()] == ["olga@localhost"]


async def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(directory_module, "CACHE_SIZE", 3)
    monkeypatch.setattr(directory_module, "ABSENT_SIZE", 2)
    store = CountingStore()
    for n in range(5):
        store.add(f"c{n}", f"Company {n}")
    directory = Directory(store)
    await directory.reload(None)
    await directory.load([f"c{n}" for n in range(5)])
    assert [directory.knows(f"c{n}") for n in range(5)] == [False, False, True, True, True]
    directory.company("c2")  # used: kept longer than c3
    await directory.load(["c0"])
    assert [directory.knows(f"c{n}") for n in range(5)] == [True, False, True, False, True]
    await directory.load(["x1", "x2", "x3"])
    assert [directory.knows(x) for x in ("x1", "x2", "x3")] == [False, True, True]


async def test_a_bulk_change_forgets_the_cache() -> None:
    store = CountingStore()
    store.add("quiet", "Quiet Shop")
    directory = Directory(store)
    await directory.reload(None)
    await directory.load(["quiet", "nobody"])
    generation = directory.generation
    await directory.reload(None)  # what an import's one notification means
    assert not directory.knows("quiet") and not directory.knows("nobody")
    assert directory.generation > generation


async def test_messages_wait_in_arrival_order_while_a_company_is_read() -> None:
    async with routing_env() as env:
        # A company without agents: not in memory until a message needs it.
        env.store.add("quiet", "Quiet Shop")
        assert not env.directory.knows("quiet")
        env.submit(chat("anna@localhost/a", "quiet@biz.localhost", "one", "m1", RECEIPT_REQ))
        env.submit(chat("anna@localhost/a", "pizza@biz.localhost", "two", "m2", RECEIPT_REQ))
        env.submit(chat("anna@localhost/a", "nobody@biz.localhost", "three", "m3"))
        out = await env.output()
        receipts = [r.get("id") for el in out for r in el if r.tag == "{urn:xmpp:receipts}received"]
        assert receipts == ["m1", "m2"]  # archived in the order they arrived
        [unknown] = [el for el in out if el.get("type") == "error"]
        assert unknown.get("id") == "m3"
        assert error_condition(unknown) == ("cancel", "item-not-found")
        assert [m.body for _, m in env.archive.rows] == ["one", "two"]


async def test_messages_are_answered_wait_while_the_directory_cannot_be_read() -> None:
    async with routing_env() as env:
        env.store.add("quiet", "Quiet Shop")
        original = env.store.companies_by_slug

        async def down(slugs: Sequence[str]) -> list[Company]:
            raise Unavailable("fake outage")

        env.store.companies_by_slug = down  # type: ignore[method-assign]
        out = await env.send(chat("anna@localhost/a", "quiet@biz.localhost", "hello"))
        [error] = out
        assert error_condition(error) == ("wait", "internal-server-error")
        env.store.companies_by_slug = original  # type: ignore[method-assign]
        out = await env.send(chat("anna@localhost/a", "quiet@biz.localhost", "again", "m2"))
        assert all(el.get("type") != "error" for el in out)
        assert [m.body for _, m in env.archive.rows] == ["again"]
