"""The component's in-memory view of the company directory.

Routing looks companies and agents up on every message, so they are served
from memory. PostgreSQL stays the source of truth: ``DirectoryStore.watch``
reports every change (CLI, import, SQL) and every reconnection, and the
affected entries are reloaded, so a change takes effect in every running
component process without a restart. A change of one company reloads that
company; a change of several at once (an import) and a reconnection reload
everything, once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from component.logs import get_logger
from storage.errors import NotFound
from storage.models import Agent, Company, DirectorySnapshot
from storage.protocols import DirectoryStore

log = get_logger(__name__)


class Directory:
    def __init__(self, store: DirectoryStore) -> None:
        self._store = store
        self._by_slug: dict[str, Company] = {}
        self._by_id: dict[int, Company] = {}
        self._agents: dict[int, dict[str, Agent]] = {}
        self._by_agent: dict[str, set[int]] = {}
        self.loaded = asyncio.Event()

    # -- lookups (hot path) -------------------------------------------------

    def company(self, slug: str) -> Company | None:
        return self._by_slug.get(slug)

    def company_by_id(self, company_id: int) -> Company | None:
        return self._by_id.get(company_id)

    def companies(self) -> list[Company]:
        return sorted(self._by_slug.values(), key=lambda c: c.slug)

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

    # -- maintenance --------------------------------------------------------

    def apply_snapshot(self, snap: DirectorySnapshot) -> None:
        self._by_slug = {c.slug: c for c in snap.companies}
        self._by_id = {c.id: c for c in snap.companies}
        agents: dict[int, dict[str, Agent]] = {}
        for agent in snap.agents:
            agents.setdefault(agent.company_id, {})[agent.jid] = agent
        self._agents = agents
        self._reindex_agents()
        self.loaded.set()
        log.info("directory.loaded", companies=len(self._by_slug), agents=len(snap.agents))

    def _reindex_agents(self) -> None:
        by_agent: dict[str, set[int]] = {}
        for cid, agents in self._agents.items():
            for jid in agents:
                by_agent.setdefault(jid, set()).add(cid)
        self._by_agent = by_agent

    async def reload(self, slug: str | None) -> None:
        """Reload one company (``slug``) or everything (``None``)."""
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
        old = self._by_slug.pop(slug, None)
        if old is not None:
            self._by_id.pop(old.id, None)
            self._agents.pop(old.id, None)
        if company is not None:
            self._by_slug[slug] = company
            self._by_id[company.id] = company
            self._agents[company.id] = {a.jid: a for a in agents}
        self._reindex_agents()
        log.info("directory.reloaded", slug=slug, present=company is not None)
