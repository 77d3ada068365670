"""DirectoryStore on PostgreSQL: companies and agents, composed from their table modules.

This module owns the transactions and the mapping of "no row" to NotFound;
the SQL lives in :mod:`.tables.companies`, :mod:`.tables.agents` and, for
imports, :mod:`.tables.company_imports`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from storage.errors import NotFound
from storage.models import (
    Agent,
    Company,
    CompanyDraft,
    DirectorySnapshot,
    ImportedCompany,
    ImportReport,
    Role,
)
from storage.postgres.listen import listen
from storage.postgres.pool import Database
from storage.postgres.tables import agents, companies, company_imports, roster_jobs
from storage.protocols import DirectoryListener

#: Channel of the companies/agents triggers (migration 0011); the payload is
#: the slug of the one company a statement changed, or EVERYTHING.
CHANNEL = "orgchat_directory"
#: The payload of a statement that changed several companies (an import).
EVERYTHING = "*"


class PgDirectoryStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add_company(self, draft: CompanyDraft) -> Company:
        async with self._db.transaction() as conn:
            [company] = await companies.insert_many(conn, [draft])
            if draft.retention_days is not None:
                await companies.set_retention(conn, company.id, draft.retention_days)
                company = dataclasses.replace(company, retention_days=draft.retention_days)
        return company

    async def remove_company(self, slug: str) -> None:
        async with self._db.acquire() as conn:
            if not await companies.delete(conn, slug):
                raise NotFound(f"no company {slug!r}")

    async def get_company(self, slug: str) -> Company | None:
        async with self._db.acquire() as conn:
            return await companies.by_slug(conn, slug)

    async def list_companies(self) -> list[Company]:
        async with self._db.acquire() as conn:
            return await companies.list_all(conn)

    async def companies_by_slug(self, slugs: Sequence[str]) -> list[Company]:
        async with self._db.acquire() as conn:
            return await companies.by_slugs(conn, slugs)

    async def companies_by_id(self, ids: Sequence[int]) -> list[Company]:
        async with self._db.acquire() as conn:
            return await companies.by_ids(conn, ids)

    async def add_agent(self, slug: str, jid: str, role: Role) -> Agent:
        async with self._db.acquire() as conn:
            agent = await agents.insert(conn, slug, jid, role)
        if agent is None:
            raise NotFound(f"no company {slug!r}")
        return agent

    async def remove_agent(self, slug: str, jid: str) -> None:
        async with self._db.acquire() as conn:
            if not await agents.delete(conn, slug, jid):
                raise NotFound(f"{jid} is not an agent of {slug!r} (or no such company)")

    async def list_agents(self, slug: str) -> list[Agent]:
        async with self._db.acquire() as conn:
            found = await agents.of_company(conn, slug)
        if found is None:
            raise NotFound(f"no company {slug!r}")
        return found

    async def import_companies(self, items: Iterable[ImportedCompany]) -> ImportReport:
        """Upsert companies by slug with their agents and roster jobs, in one transaction.

        ``items`` is copied into PostgreSQL (COPY) as it yields them, then
        merged by a few set-based statements; an exception it raises rolls
        everything back. Companies whose fields already match are not
        rewritten (and not counted as updated). Existing agents keep their
        row; only their role is corrected; agents not listed stay. An item
        repeating an earlier slug overrides its fields and adds its agents.
        Every agent of an imported company gets a roster "add" job, so that an
        import also repairs rosters an ejabberd lost. Raises ValueError on a
        malformed slug.
        """
        async with self._db.transaction() as conn:
            await company_imports.create(conn)
            if not await company_imports.copy(conn, items):
                return ImportReport(0, 0, 0, 0)
            added, updated = await companies.merge_imported(conn)
            # Roster adds for the agents there already; the agents' trigger
            # queues the new ones' as they are inserted.
            queued = await roster_jobs.queue_imported_adds(conn)
            agents_added = await agents.merge_imported(conn)
        return ImportReport(added, updated, agents_added, queued + agents_added)

    async def resync_rosters(self, slugs: Sequence[str] | None = None) -> int:
        async with self._db.transaction() as conn:
            return await roster_jobs.queue_adds(conn, slugs)

    # -- settings an admin changes on the agent desk ----------------------------------

    async def set_hours(self, company_id: int, hours: str | None, timezone: str) -> None:
        async with self._db.acquire() as conn:
            if not await companies.set_hours(conn, company_id, hours, timezone):
                raise NotFound(f"no company {company_id}")

    async def set_away_message(self, company_id: int, text: str | None) -> None:
        async with self._db.acquire() as conn:
            if not await companies.set_away_message(conn, company_id, text):
                raise NotFound(f"no company {company_id}")

    async def set_reaction_window(self, company_id: int, seconds: int | None) -> None:
        async with self._db.acquire() as conn:
            if not await companies.set_reaction_window(conn, company_id, seconds):
                raise NotFound(f"no company {company_id}")

    async def snapshot(self) -> DirectorySnapshot:
        # One REPEATABLE READ transaction: companies and agents from the same
        # instant, so no agent points at a company the snapshot lacks.
        async with (
            self._db.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            staffed = await companies.with_agents(conn)
            all_agents = await agents.list_all(conn)
        return DirectorySnapshot(companies=tuple(staffed), agents=tuple(all_agents))

    async def watch(self, listener: DirectoryListener) -> None:
        async def changed(payload: str | None) -> None:
            await listener(None if payload == EVERYTHING else payload)

        await listen(self._db, CHANNEL, changed)
