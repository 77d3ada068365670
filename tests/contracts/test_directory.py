"""DirectoryStore: PgDirectoryStore against FakeDirectoryStore.

The fake implements what the component's Directory cache reads: ``snapshot``,
``get_company`` and ``list_agents``; companies are added with its ``add``
helper. The writing methods (add/remove/import companies and agents, the desk
settings) and ``watch`` are PostgreSQL's alone and tested in
tests/integration/storage/test_pg_directory.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import pytest

from storage import postgres
from storage.errors import NotFound
from storage.models import Agent, Company, CompanyDraft, Role
from storage.protocols import DirectoryStore
from tests.contracts.conftest import RealPostgres, unique
from tests.unit.fakes import FakeDirectoryStore

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


class Directory(Protocol):
    store: DirectoryStore

    async def add(self, slug: str, name: str, agents: Sequence[str] = ()) -> Company:
        """A company with these agents (role AGENT), as the store's own means make it."""


class PgDirectory:
    def __init__(self, pg: postgres.PostgresStores) -> None:
        self.store = pg.directory

    async def add(self, slug: str, name: str, agents: Sequence[str] = ()) -> Company:
        company = await self.store.add_company(CompanyDraft(slug=slug, name=name))
        for jid in agents:
            await self.store.add_agent(slug, jid, Role.AGENT)
        return company


class FakeDirectory:
    def __init__(self) -> None:
        self.store = self.fake = FakeDirectoryStore()

    async def add(self, slug: str, name: str, agents: Sequence[str] = ()) -> Company:
        return self.fake.add(slug, name, agents)


@pytest.fixture
def directory(pg_or_fake: RealPostgres | None) -> Directory:
    return FakeDirectory() if pg_or_fake is None else PgDirectory(pg_or_fake.stores)


async def test_a_company_is_found_by_its_slug(directory: Directory) -> None:
    slug = unique("c-")
    company = await directory.add(slug, "Pizza Napoli")
    assert (company.slug, company.name, company.timezone) == (slug, "Pizza Napoli", "UTC")
    assert (company.email, company.hours, company.category, company.city) == (None,) * 4
    assert company.accepts_requests and company.retention_days is None
    assert await directory.store.get_company(slug) == company
    assert await directory.store.get_company(unique("none-")) is None


async def test_agents_are_listed_by_jid(directory: Directory) -> None:
    slug, empty = unique("c-"), unique("c-")
    company = await directory.add(slug, "Bikes", ["zoe@localhost", "anna@localhost"])
    await directory.add(empty, "Nobody here")
    assert await directory.store.list_agents(slug) == [
        Agent(company.id, "anna@localhost", Role.AGENT),
        Agent(company.id, "zoe@localhost", Role.AGENT),
    ]
    assert await directory.store.list_agents(empty) == []
    with pytest.raises(NotFound):
        await directory.store.list_agents(unique("none-"))


async def test_the_snapshot_holds_every_agent_and_their_companies_in_order(
    directory: Directory,
) -> None:
    # Added out of order: companies come by slug, agents by company and JID.
    second = await directory.add(unique("c-b-"), "Second", ["b@localhost", "a@localhost"])
    first = await directory.add(unique("c-a-"), "First", ["c@localhost"])
    alone = await directory.add(unique("c-c-"), "No agents")
    mine = {first.id, second.id, alone.id}
    snapshot = await directory.store.snapshot()
    # A company without agents is read when needed, not held in memory.
    assert [c for c in snapshot.companies if c.id in mine] == [first, second]
    assert [(a.company_id, a.jid) for a in snapshot.agents if a.company_id in mine] == sorted(
        [
            (first.id, "c@localhost"),
            (second.id, "a@localhost"),
            (second.id, "b@localhost"),
        ]
    )


async def test_companies_are_read_by_slug_and_by_id(directory: Directory) -> None:
    b = await directory.add(unique("c-b-"), "B")
    a = await directory.add(unique("c-a-"), "A", ["a@localhost"])
    missing = unique("c-none-")
    assert await directory.store.companies_by_slug([b.slug, missing, a.slug, a.slug]) == [a, b]
    assert await directory.store.companies_by_slug([]) == []
    assert await directory.store.companies_by_id([b.id, -1, a.id]) == sorted(
        [a, b], key=lambda c: c.id
    )
