"""The component's in-memory view of the company directory, bounded whatever its size.

Routing looks companies and agents up on every message, so they are served
from memory. A city directory lists millions of companies, but messages go
to few of them, so what is kept is bounded:

* every agent, and every company that has agents (the snapshot), always:
  presence, the agents' commands and every reply need them at once;
* other companies as they are asked for, in a least-recently-used cache of
  :data:`CACHE_SIZE`, and the addresses found to be no company, in one of
  :data:`ABSENT_SIZE` (a stream of messages to made-up addresses costs one
  query per batch, then nothing).

Lookups are synchronous and answer from memory (:meth:`Directory.company`);
what may not be in memory is loaded first, in one query for many
(:meth:`Directory.load`, :meth:`Directory.find`). PostgreSQL stays the
source of truth: ``DirectoryStore.watch`` reports every change (CLI, import,
SQL) and every reconnection; a change to a company in memory reloads it, a
new company clears its "absent" mark, and a bulk change (an import: one
notification for all) or a reconnection reloads the snapshot and forgets the
cache, so a change takes effect in
every running component process without a restart.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterable

from component.logs import get_logger
from storage.errors import NotFound
from storage.models import Agent, Company, DirectorySnapshot
from storage.protocols import DirectoryStore

log = get_logger(__name__)

#: Companies without agents kept in memory (least recently used go first).
CACHE_SIZE = 20_000
#: Addresses remembered as no company.
ABSENT_SIZE = 20_000


class Directory:
    def __init__(self, store: DirectoryStore) -> None:
        self._store = store
        #: Companies with agents (always here), then the cache of the others.
        self._staffed: dict[str, Company] = {}
        self._cached: OrderedDict[str, Company] = OrderedDict()
        self._by_id: dict[int, Company] = {}
        self._absent: OrderedDict[str, None] = OrderedDict()
        self._agents: dict[int, dict[str, Agent]] = {}
        self._by_agent: dict[str, set[int]] = {}
        self.loaded = asyncio.Event()
        #: Counts the changes seen, so that what is derived from the directory
        #: (the search forms' choices) knows when to be read again.
        self.generation = 0

    # -- lookups (hot path: memory only) --------------------------------------------

    def company(self, slug: str) -> Company | None:
        """The company, if it is in memory (see :meth:`load`)."""
        company = self._staffed.get(slug)
        if company is None:
            company = self._cached.get(slug)
            if company is not None:
                self._cached.move_to_end(slug)
        return company

    def company_by_id(self, company_id: int) -> Company | None:
        """The company, if it is in memory (see :meth:`find_by_id`)."""
        return self._by_id.get(company_id)

    def knows(self, slug: str) -> bool:
        """Whether :meth:`company` answers for ``slug`` without a :meth:`load`."""
        return slug in self._staffed or slug in self._cached or slug in self._absent

    def agents(self, company_id: int) -> Iterable[str]:
        return self._agents.get(company_id, {}).keys()

    def is_agent(self, company_id: int, jid: str) -> bool:
        return jid in self._agents.get(company_id, {})

    def agent(self, company_id: int, jid: str) -> Agent | None:
        """The agent (with their role), if ``jid`` is one of the company's."""
        return self._agents.get(company_id, {}).get(jid)

    def companies_of(self, agent_jid: str) -> set[int]:
        return self._by_agent.get(agent_jid, set())

    def all_agents(self) -> list[tuple[Company, str]]:
        return [
            (self._by_id[cid], jid)
            for cid, agents in self._agents.items()
            if cid in self._by_id
            for jid in agents
        ]

    # -- loading ----------------------------------------------------------------------

    async def load(self, slugs: Iterable[str]) -> None:
        """Bring the companies ``slugs`` name into memory (one query for all that
        are not known yet). Raises Unavailable."""
        wanted = sorted({slug for slug in slugs if not self.knows(slug)})
        if not wanted:
            return
        found = {c.slug: c for c in await self._store.companies_by_slug(wanted)}
        for slug in wanted:
            company = found.get(slug)
            if company is None:
                self._mark_absent(slug)
            elif not self.knows(slug):  # a reload may have brought it meanwhile
                self._cache(company)

    async def find(self, slug: str) -> Company | None:
        """The company, from memory or PostgreSQL. Raises Unavailable."""
        await self.load([slug])
        return self.company(slug)

    async def load_ids(self, ids: Iterable[int]) -> None:
        """Bring the companies ``ids`` name into memory (one query for all that
        are not there). Raises Unavailable."""
        wanted = sorted({i for i in ids if i not in self._by_id})
        if wanted:
            for company in await self._store.companies_by_id(wanted):
                if company.slug not in self._staffed and company.slug not in self._cached:
                    self._cache(company)

    async def find_by_id(self, company_id: int) -> Company | None:
        """The company, from memory or PostgreSQL. Raises Unavailable."""
        await self.load_ids([company_id])
        return self._by_id.get(company_id)

    def _cache(self, company: Company) -> None:
        self._absent.pop(company.slug, None)
        self._cached[company.slug] = company
        self._by_id[company.id] = company
        while len(self._cached) > CACHE_SIZE:
            _, old = self._cached.popitem(last=False)
            self._by_id.pop(old.id, None)

    def _mark_absent(self, slug: str) -> None:
        self._absent[slug] = None
        while len(self._absent) > ABSENT_SIZE:
            self._absent.popitem(last=False)

    # -- maintenance ------------------------------------------------------------------

    def apply_snapshot(self, snap: DirectorySnapshot) -> None:
        """Hold exactly the snapshot: every agent and the companies that have agents."""
        self._staffed = {c.slug: c for c in snap.companies}
        self._cached.clear()
        self._absent.clear()
        self._by_id = {c.id: c for c in snap.companies}
        agents: dict[int, dict[str, Agent]] = {}
        for agent in snap.agents:
            agents.setdefault(agent.company_id, {})[agent.jid] = agent
        self._agents = agents
        self._reindex_agents()
        self.generation += 1
        self.loaded.set()
        log.info("directory.loaded", companies=len(self._staffed), agents=len(snap.agents))

    def _reindex_agents(self) -> None:
        by_agent: dict[str, set[int]] = {}
        for cid, agents in self._agents.items():
            for jid in agents:
                by_agent.setdefault(jid, set()).add(cid)
        self._by_agent = by_agent

    async def reload(self, slug: str | None) -> None:
        """Reload one company (``slug``) or everything (``None``: many changed)."""
        if slug is None:
            self.apply_snapshot(await self._store.snapshot())
            return
        company = await self._store.get_company(slug)
        agents: list[Agent] = []
        if company is not None:
            try:
                agents = await self._store.list_agents(slug)
            except NotFound:
                agents = []
        # No await from here on: a lookup meanwhile never finds the company missing.
        self._absent.pop(slug, None)
        old = self._staffed.pop(slug, None) or self._cached.pop(slug, None)
        if old is not None:
            self._by_id.pop(old.id, None)
            self._agents.pop(old.id, None)
        if company is not None and agents:
            self._staffed[slug] = company
            self._by_id[company.id] = company
            self._agents[company.id] = {a.jid: a for a in agents}
        elif company is not None and old is not None:
            self._cache(company)  # still wanted: it was asked for
        self._reindex_agents()
        self.generation += 1
        log.info("directory.reloaded", slug=slug, present=company is not None)
