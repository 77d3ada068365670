"""DirectoryStore on PostgreSQL: companies and agents, composed from their table modules.

This module owns the transactions and the mapping of "no row" to NotFound;
the SQL lives in :mod:`.tables.companies` and :mod:`.tables.agents`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

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
from storage.postgres.tables import agents, companies, roster_jobs
from storage.protocols import DirectoryListener

#: Channel of the companies/agents triggers; the payload is the company slug.
CHANNEL = "orgchat_directory"


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

    async def import_companies(self, items: Sequence[ImportedCompany]) -> ImportReport:
        """Upsert companies by slug and add their missing agents, in one transaction.

        Companies whose fields already match are not rewritten (and not counted
        as updated). Existing agents keep their row; only their role is
        corrected. An item repeating an earlier slug overrides its fields and
        adds its agents. Raises Conflict if another writer created one of the
        new companies meanwhile (retry), ValueError on a malformed slug.
        """
        drafts: dict[str, CompanyDraft] = {}
        roles: dict[str, dict[str, Role]] = {}
        for item in items:
            drafts[item.company.slug] = item.company
            roles.setdefault(item.company.slug, {}).update(item.agents)

        async with self._db.transaction() as conn:
            existing = await companies.lock_by_slugs(conn, list(drafts))
            new = [d for slug, d in drafts.items() if slug not in existing]
            changed = [
                d
                for slug, d in drafts.items()
                if slug in existing and companies.differs(existing[slug], d)
            ]
            ids = {slug: company.id for slug, company in existing.items()}
            if new:
                ids.update((c.slug, c.id) for c in await companies.insert_many(conn, new))
            if changed:
                await companies.update_many(conn, changed)
            rows = [
                (ids[slug], jid, role)
                for slug, by_jid in roles.items()
                for jid, role in by_jid.items()
            ]
            added = 0
            if rows:
                added = await agents.insert_missing(conn, rows)
                await agents.update_roles(conn, rows)
        return ImportReport(
            companies_added=len(new), companies_updated=len(changed), agents_added=added
        )

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
        await listen(self._db, CHANNEL, listener)
