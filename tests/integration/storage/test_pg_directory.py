"""DirectoryStore on PostgreSQL: companies, agents, import, snapshot, triggers, watch."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import asyncpg
import pytest

from storage import postgres
from storage.errors import Conflict, NotFound
from storage.models import Agent, CompanyDraft, ImportedCompany, ImportReport, Role
from storage.postgres.directory import CHANNEL

if TYPE_CHECKING:
    from tests.conftest import TcpProxy

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

Sql = asyncpg.Connection  # the plain connection of the `sql` fixture


def draft(slug: str, **fields: str) -> CompanyDraft:
    return CompanyDraft(slug=slug, name=fields.pop("name", f"Company {slug}"), **fields)


async def jobs_of(sql: Sql, slug: str) -> list[tuple[str, str, str]]:
    """(op, company_name, agent_jid) of the queued roster jobs of a company, in order."""
    rows = await sql.fetch(
        "SELECT op, company_name, agent_jid FROM roster_jobs WHERE company_slug = $1 ORDER BY id",
        slug,
    )
    return [(r["op"], r["company_name"], r["agent_jid"]) for r in rows]


# -- companies ----------------------------------------------------------------


async def test_add_company_then_get_and_list(pg: postgres.PostgresStores, slug: str) -> None:
    company = await pg.directory.add_company(
        CompanyDraft(
            slug=slug,
            name="Pizza Napoli",
            email="info@pizza.example",
            timezone="Asia/Novosibirsk",
            hours="09:00-21:00",
            category="food",
            city="Novosibirsk",
        )
    )

    assert company.id > 0
    assert (
        company.slug,
        company.name,
        company.email,
        company.timezone,
        company.hours,
        company.category,
        company.city,
    ) == (
        slug,
        "Pizza Napoli",
        "info@pizza.example",
        "Asia/Novosibirsk",
        "09:00-21:00",
        "food",
        "Novosibirsk",
    )
    assert await pg.directory.get_company(slug) == company
    assert company in await pg.directory.list_companies()


async def test_add_company_defaults(pg: postgres.PostgresStores, slug: str) -> None:
    company = await pg.directory.add_company(CompanyDraft(slug=slug, name="Bare"))
    assert (company.email, company.timezone, company.hours, company.category, company.city) == (
        None,
        "UTC",
        None,
        None,
        None,
    )


async def test_add_company_twice_is_a_conflict(pg: postgres.PostgresStores, slug: str) -> None:
    await pg.directory.add_company(draft(slug))
    with pytest.raises(Conflict):
        await pg.directory.add_company(draft(slug, name="Other"))


@pytest.mark.parametrize("bad", ["", "-a", "a-", "UPPER", "a_b", "a" * 65, "é"])
async def test_malformed_slug_is_refused(pg: postgres.PostgresStores, bad: str) -> None:
    with pytest.raises(ValueError, match="slug"):
        await pg.directory.add_company(draft(bad))


async def test_get_missing_company_is_none(pg: postgres.PostgresStores) -> None:
    assert await pg.directory.get_company("no-such-company") is None


async def test_remove_company(pg: postgres.PostgresStores, sql: Sql, slug: str) -> None:
    company = await pg.directory.add_company(draft(slug))
    await pg.directory.add_agent(slug, "alice@localhost", Role.AGENT)
    [conversation] = await pg.conversations.open_many([(company.id, "carol@localhost", None)])

    await pg.directory.remove_company(slug)

    assert await pg.directory.get_company(slug) is None
    assert await pg.conversations.find(company.id, "carol@localhost") is None
    assert await pg.conversations.of_company(conversation.company_id, conversation.token) is None
    assert await sql.fetchval("SELECT count(*) FROM agents WHERE company_id = $1", company.id) == 0


async def test_remove_missing_company_is_not_found(pg: postgres.PostgresStores) -> None:
    with pytest.raises(NotFound):
        await pg.directory.remove_company("no-such-company")


# -- agents -------------------------------------------------------------------


async def test_add_list_remove_agents(pg: postgres.PostgresStores, slug: str) -> None:
    company = await pg.directory.add_company(draft(slug))

    bob = await pg.directory.add_agent(slug, "bob@localhost", Role.ADMIN)
    alice = await pg.directory.add_agent(slug, "alice@localhost", Role.AGENT)

    assert bob == Agent(company_id=company.id, jid="bob@localhost", role=Role.ADMIN)
    assert await pg.directory.list_agents(slug) == [alice, bob]  # ordered by JID

    await pg.directory.remove_agent(slug, "bob@localhost")
    assert await pg.directory.list_agents(slug) == [alice]


async def test_company_without_agents_lists_none(pg: postgres.PostgresStores, slug: str) -> None:
    await pg.directory.add_company(draft(slug))
    assert await pg.directory.list_agents(slug) == []


async def test_agent_errors(pg: postgres.PostgresStores, slug: str) -> None:
    with pytest.raises(NotFound):
        await pg.directory.add_agent("no-such-company", "bob@localhost", Role.AGENT)
    with pytest.raises(NotFound):
        await pg.directory.list_agents("no-such-company")
    with pytest.raises(NotFound):
        await pg.directory.remove_agent("no-such-company", "bob@localhost")

    await pg.directory.add_company(draft(slug))
    await pg.directory.add_agent(slug, "bob@localhost", Role.AGENT)
    with pytest.raises(Conflict):
        await pg.directory.add_agent(slug, "bob@localhost", Role.ADMIN)
    with pytest.raises(NotFound):
        await pg.directory.remove_agent(slug, "nobody@localhost")


async def test_one_agent_in_several_companies(pg: postgres.PostgresStores, slug: str) -> None:
    other = f"{slug}-2"
    await pg.directory.add_company(draft(slug))
    await pg.directory.add_company(draft(other))
    await pg.directory.add_agent(slug, "bob@localhost", Role.AGENT)
    await pg.directory.add_agent(other, "bob@localhost", Role.ADMIN)

    await pg.directory.remove_agent(slug, "bob@localhost")

    assert await pg.directory.list_agents(slug) == []
    assert [a.role for a in await pg.directory.list_agents(other)] == [Role.ADMIN]


# -- import -------------------------------------------------------------------


async def test_import_adds_updates_and_skips(
    pg: postgres.PostgresStores, sql: Sql, slug: str
) -> None:
    same, changed, new = f"{slug}-same", f"{slug}-changed", f"{slug}-new"
    await pg.directory.add_company(draft(same, city="Omsk"))
    await pg.directory.add_company(draft(changed, city="Omsk"))
    await pg.directory.add_agent(changed, "bob@localhost", Role.AGENT)
    before = await sql.fetchval("SELECT xmin::text FROM companies WHERE slug = $1", same)

    report = await pg.directory.import_companies(
        [
            ImportedCompany(draft(same, city="Omsk"), agents=(("carol@localhost", Role.AGENT),)),
            ImportedCompany(
                draft(changed, city="Tomsk"),
                agents=(
                    ("bob@localhost", Role.ADMIN),  # existing: role corrected, not counted
                    ("dave@localhost", Role.AGENT),
                ),
            ),
            ImportedCompany(
                draft(new, email="new@example.org"), agents=(("erin@localhost", Role.ADMIN),)
            ),
        ]
    )

    assert report == ImportReport(
        companies_added=1, companies_updated=1, agents_added=3, roster_updates=4
    )
    # An unchanged company is not rewritten (no new row version).
    assert await sql.fetchval("SELECT xmin::text FROM companies WHERE slug = $1", same) == before
    changed_company = await pg.directory.get_company(changed)
    assert changed_company is not None and changed_company.city == "Tomsk"
    new_company = await pg.directory.get_company(new)
    assert new_company is not None and new_company.email == "new@example.org"
    assert [(a.jid, a.role) for a in await pg.directory.list_agents(changed)] == [
        ("bob@localhost", Role.ADMIN),
        ("dave@localhost", Role.AGENT),
    ]
    assert [(a.jid, a.role) for a in await pg.directory.list_agents(new)] == [
        ("erin@localhost", Role.ADMIN)
    ]

    # Running the same import again changes nothing.
    again = await pg.directory.import_companies(
        [
            ImportedCompany(draft(same, city="Omsk"), agents=(("carol@localhost", Role.AGENT),)),
            ImportedCompany(draft(changed, city="Tomsk"), agents=(("dave@localhost", Role.AGENT),)),
        ]
    )
    assert again == ImportReport(
        companies_added=0, companies_updated=0, agents_added=0, roster_updates=3
    )


async def test_import_merges_repeated_slugs(pg: postgres.PostgresStores, slug: str) -> None:
    report = await pg.directory.import_companies(
        [
            ImportedCompany(draft(slug, name="First"), agents=(("a@localhost", Role.AGENT),)),
            ImportedCompany(
                draft(slug, name="Second"),
                agents=(("a@localhost", Role.ADMIN), ("b@localhost", Role.AGENT)),
            ),
        ]
    )

    assert report == ImportReport(
        companies_added=1, companies_updated=0, agents_added=2, roster_updates=2
    )
    company = await pg.directory.get_company(slug)
    assert company is not None and company.name == "Second"
    assert [(a.jid, a.role) for a in await pg.directory.list_agents(slug)] == [
        ("a@localhost", Role.ADMIN),
        ("b@localhost", Role.AGENT),
    ]


async def test_import_is_one_transaction(pg: postgres.PostgresStores, slug: str) -> None:
    with pytest.raises(ValueError, match="slug"):
        await pg.directory.import_companies(
            [
                ImportedCompany(draft(slug), agents=(("a@localhost", Role.AGENT),)),
                ImportedCompany(draft("Not A Slug")),
            ]
        )
    assert await pg.directory.get_company(slug) is None


async def test_import_nothing(pg: postgres.PostgresStores) -> None:
    assert await pg.directory.import_companies([]) == ImportReport(0, 0, 0, 0)


async def test_import_reads_its_items_as_it_writes(
    pg: postgres.PostgresStores, sql: Sql, slug: str
) -> None:
    """A generator's exception rolls back what it yielded before; the store stays usable."""

    def items() -> Iterator[ImportedCompany]:
        yield ImportedCompany(draft(f"{slug}-1"), agents=(("a@localhost", Role.AGENT),))
        yield ImportedCompany(draft(f"{slug}-2"))
        raise RuntimeError("bad row 3")

    with pytest.raises(RuntimeError, match="bad row 3"):
        await pg.directory.import_companies(items())
    assert await sql.fetchval("SELECT count(*) FROM companies WHERE slug LIKE $1", f"{slug}-%") == 0

    many = (ImportedCompany(draft(f"{slug}-{n}")) for n in range(5000))
    assert await pg.directory.import_companies(many) == ImportReport(5000, 0, 0, 0)
    assert await sql.fetchval("SELECT count(*) FROM companies WHERE slug LIKE $1", f"{slug}-%") == (
        5000
    )
    await sql.execute("DELETE FROM companies WHERE slug LIKE $1", f"{slug}-%")


async def test_import_queues_every_imported_agents_roster_item(
    pg: postgres.PostgresStores, sql: Sql, slug: str
) -> None:
    await pg.directory.add_company(draft(slug, name="Pizza"))
    await pg.directory.add_agent(slug, "old@localhost", Role.AGENT)
    await sql.execute("DELETE FROM roster_jobs WHERE company_slug = $1", slug)

    report = await pg.directory.import_companies(
        [ImportedCompany(draft(slug, name="Pizza"), agents=(("new@localhost", Role.AGENT),))]
    )

    assert report == ImportReport(0, 0, 1, 2)  # the agent not listed stays, and is re-added
    assert sorted(await jobs_of(sql, slug)) == [
        ("add", "Pizza", "new@localhost"),
        ("add", "Pizza", "old@localhost"),
    ]


async def test_accepts_requests_round_trip(
    pg: postgres.PostgresStores, sql: Sql, slug: str
) -> None:
    """Added, listed, imported (counted as an update) and in the snapshot."""
    assert (await pg.directory.add_company(draft(slug))).accepts_requests is True
    other = f"{slug}-out"
    out = await pg.directory.add_company(
        CompanyDraft(slug=other, name="Opted out", accepts_requests=False)
    )
    assert out.accepts_requests is False
    assert await pg.directory.get_company(other) == out
    assert out in await pg.directory.list_companies()
    assert (
        await sql.fetchval("SELECT accepts_requests FROM companies WHERE slug = $1", other) is False
    )

    flip = [
        ImportedCompany(CompanyDraft(slug=slug, name=f"Company {slug}", accepts_requests=False)),
        ImportedCompany(CompanyDraft(slug=other, name="Opted out", accepts_requests=True)),
    ]
    assert await pg.directory.import_companies(flip) == ImportReport(0, 2, 0, 0)
    assert await pg.directory.import_companies(flip) == ImportReport(0, 0, 0, 0)
    read = {c.slug: c for c in await pg.directory.companies_by_slug([slug, other])}
    assert (read[slug].accepts_requests, read[other].accepts_requests) == (False, True)
    new = f"{slug}-new"
    await pg.directory.import_companies(
        [ImportedCompany(CompanyDraft(slug=new, name="New", accepts_requests=False))]
    )
    company = await pg.directory.get_company(new)
    assert company is not None and company.accepts_requests is False


# -- snapshot -----------------------------------------------------------------


async def test_snapshot_holds_every_agent_and_the_companies_with_agents(
    pg: postgres.PostgresStores, slug: str
) -> None:
    company = await pg.directory.add_company(draft(slug))
    agent = await pg.directory.add_agent(slug, "bob@localhost", Role.AGENT)
    alone = await pg.directory.add_company(draft(f"{slug}-alone"))

    snapshot = await pg.directory.snapshot()

    assert company in snapshot.companies and alone not in snapshot.companies
    assert agent in snapshot.agents
    assert {a.company_id for a in snapshot.agents} == {c.id for c in snapshot.companies}


# -- roster job triggers --------------------------------------------------------


async def test_adding_and_removing_agents_queues_roster_jobs(
    pg: postgres.PostgresStores, sql: Sql, slug: str
) -> None:
    await pg.directory.add_company(draft(slug, name="Pizza"))
    await pg.directory.add_agent(slug, "bob@localhost", Role.AGENT)
    await pg.directory.add_agent(slug, "alice@localhost", Role.ADMIN)
    assert await jobs_of(sql, slug) == [
        ("add", "Pizza", "bob@localhost"),
        ("add", "Pizza", "alice@localhost"),
    ]

    await pg.directory.remove_agent(slug, "bob@localhost")
    # The "add" nobody had claimed yet is superseded by the "remove".
    assert await jobs_of(sql, slug) == [
        ("add", "Pizza", "alice@localhost"),
        ("remove", "Pizza", "bob@localhost"),
    ]


async def test_removing_a_company_queues_remove_jobs(
    pg: postgres.PostgresStores, sql: Sql, slug: str
) -> None:
    await pg.directory.add_company(draft(slug, name="Pizza"))
    await pg.directory.add_agent(slug, "bob@localhost", Role.AGENT)
    await pg.directory.add_agent(slug, "alice@localhost", Role.AGENT)

    await pg.directory.remove_company(slug)

    assert sorted(await jobs_of(sql, slug)) == [
        ("remove", "Pizza", "alice@localhost"),
        ("remove", "Pizza", "bob@localhost"),
    ]


async def test_raw_sql_changes_queue_jobs_too(sql: Sql, slug: str) -> None:
    """The triggers, not the store, keep the queue right: psql works as well."""
    company_id = await sql.fetchval(
        "INSERT INTO companies (slug, name) VALUES ($1, 'Raw') RETURNING id", slug
    )
    await sql.execute(
        "INSERT INTO agents (company_id, jid, role) VALUES ($1, 'bob@localhost', 'agent')",
        company_id,
    )
    await sql.execute("UPDATE companies SET name = 'Renamed' WHERE id = $1", company_id)
    assert await jobs_of(sql, slug) == [("add", "Renamed", "bob@localhost")]

    await sql.execute("DELETE FROM companies WHERE id = $1", company_id)
    assert await jobs_of(sql, slug) == [("remove", "Renamed", "bob@localhost")]


async def test_moving_an_agent_or_a_company_requeues(sql: Sql, slug: str) -> None:
    """A new JID on either side is a different roster item: remove the old, add the new."""
    new_slug = f"{slug}-moved"
    company_id = await sql.fetchval(
        "INSERT INTO companies (slug, name) VALUES ($1, 'Moving') RETURNING id", slug
    )
    await sql.execute(
        "INSERT INTO agents (company_id, jid, role) VALUES ($1, 'old@localhost', 'agent')",
        company_id,
    )
    await sql.execute("DELETE FROM roster_jobs WHERE company_slug = $1", slug)

    await sql.execute("UPDATE agents SET jid = 'new@localhost' WHERE company_id = $1", company_id)
    assert await jobs_of(sql, slug) == [
        ("remove", "Moving", "old@localhost"),
        ("add", "Moving", "new@localhost"),
    ]

    await sql.execute("UPDATE companies SET slug = $2 WHERE id = $1", company_id, new_slug)
    assert await jobs_of(sql, slug) == [
        ("remove", "Moving", "old@localhost"),
        ("remove", "Moving", "new@localhost"),  # supersedes the unclaimed "add"
    ]
    assert await jobs_of(sql, new_slug) == [("add", "Moving", "new@localhost")]

    await sql.execute("UPDATE agents SET role = 'admin' WHERE company_id = $1", company_id)
    assert len(await jobs_of(sql, new_slug)) == 1  # a role is not a roster change


async def test_renaming_through_import_requeues_adds(
    pg: postgres.PostgresStores, sql: Sql, slug: str
) -> None:
    await pg.directory.add_company(draft(slug, name="Old"))
    await pg.directory.add_agent(slug, "bob@localhost", Role.AGENT)
    await sql.execute("DELETE FROM roster_jobs WHERE company_slug = $1", slug)

    await pg.directory.import_companies([ImportedCompany(draft(slug, name="New"))])

    assert await jobs_of(sql, slug) == [("add", "New", "bob@localhost")]


# -- watch --------------------------------------------------------------------


@contextlib.asynccontextmanager
async def watching(stores: postgres.PostgresStores) -> AsyncIterator[asyncio.Queue[str | None]]:
    """Run directory.watch() in a task; yield the queue of what the listener got."""
    seen: asyncio.Queue[str | None] = asyncio.Queue()

    async def listener(changed: str | None) -> None:
        await seen.put(changed)

    task = asyncio.create_task(stores.directory.watch(listener))
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def next_event(seen: asyncio.Queue[str | None]) -> str | None:
    return await asyncio.wait_for(seen.get(), 10)


async def test_watch_reports_changes(pg: postgres.PostgresStores, slug: str) -> None:
    async with watching(pg) as seen:
        assert await next_event(seen) is None  # connected: reload everything

        await pg.directory.add_company(draft(slug))
        assert await next_event(seen) == slug
        await pg.directory.add_agent(slug, "bob@localhost", Role.AGENT)
        assert await next_event(seen) == slug
        await pg.directory.import_companies([ImportedCompany(draft(slug, name="Renamed"))])
        assert await next_event(seen) == slug
        opted_out = CompanyDraft(slug=slug, name="Renamed", accepts_requests=False)
        await pg.directory.import_companies([ImportedCompany(opted_out)])
        assert await next_event(seen) == slug
        await pg.directory.remove_agent(slug, "bob@localhost")
        assert await next_event(seen) == slug
        await pg.directory.remove_company(slug)
        assert await next_event(seen) == slug  # one notification per transaction and slug
        await asyncio.sleep(0.2)
        assert seen.empty()


@contextlib.asynccontextmanager
async def notified(pg_dsn: str, sql: Sql) -> AsyncIterator[list[str]]:
    """The payloads of NOTIFY orgchat_directory sent until the block ends, in order."""
    got: list[str] = []
    ended = asyncio.Event()

    def heard(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        if payload == "end":
            ended.set()
        else:
            got.append(payload)

    listener = await asyncpg.connect(pg_dsn)
    await listener.add_listener(CHANNEL, heard)
    try:
        yield got
        # Notifications arrive in commit order: once this one is in, so is the rest.
        await sql.execute("SELECT pg_notify($1, 'end')", CHANNEL)
        await asyncio.wait_for(ended.wait(), 10)
    finally:
        await listener.close()


async def test_an_import_is_one_notification(
    pg: postgres.PostgresStores, pg_dsn: str, sql: Sql, slug: str
) -> None:
    items = [
        ImportedCompany(draft(f"{slug}-{n}"), agents=((f"agent{n}@localhost", Role.AGENT),))
        for n in range(2000)
    ]
    async with notified(pg_dsn, sql) as got:
        await pg.directory.import_companies(items)
    assert got == ["*"]

    async with notified(pg_dsn, sql) as got:
        await pg.directory.import_companies(items)  # nothing changes
    assert got == []

    async with notified(pg_dsn, sql) as got:
        await sql.execute("DELETE FROM companies WHERE slug LIKE $1", f"{slug}-%")
    assert got == ["*"]


async def test_a_change_of_one_company_names_it(
    pg: postgres.PostgresStores, pg_dsn: str, sql: Sql, slug: str
) -> None:
    async with notified(pg_dsn, sql) as got:
        await pg.directory.add_company(draft(slug))
    assert got == [slug]

    agents = tuple((f"a{n}@localhost", Role.AGENT) for n in range(3))
    async with notified(pg_dsn, sql) as got:  # one company, several agent rows
        await pg.directory.import_companies([ImportedCompany(draft(slug), agents=agents)])
    assert got == [slug]

    moved = f"{slug}-moved"
    async with notified(pg_dsn, sql) as got:
        await sql.execute("UPDATE companies SET slug = $2 WHERE slug = $1", slug, moved)
    assert got == [moved, slug]

    async with notified(pg_dsn, sql) as got:
        await pg.directory.remove_company(moved)
    assert got == [moved]


async def test_watch_hears_a_bulk_change_as_reload_everything(
    pg: postgres.PostgresStores, slug: str
) -> None:
    async with watching(pg) as seen:
        assert await next_event(seen) is None  # connected
        await pg.directory.import_companies(
            [ImportedCompany(draft(f"{slug}-{n}")) for n in range(3)]
        )
        assert await next_event(seen) is None
        await asyncio.sleep(0.2)
        assert seen.empty()


async def test_watch_reconnects_and_resyncs(
    pg: postgres.PostgresStores, pg_proxy: TcpProxy, pg_proxy_dsn: str, slug: str
) -> None:
    proxied = await postgres.connect(pg_proxy_dsn, min_size=1, max_size=2, command_timeout=5.0)
    try:
        async with watching(proxied) as seen:
            assert await next_event(seen) is None

            await pg_proxy.stop()  # the LISTEN connection is reset
            await pg.directory.add_company(draft(slug))  # a change it cannot hear
            await pg_proxy.start()

            assert await next_event(seen) is None  # reconnected: reload everything
            await pg.directory.add_agent(slug, "bob@localhost", Role.AGENT)
            assert await next_event(seen) == slug
    finally:
        await proxied.close()


async def test_watch_resyncs_after_a_failing_listener(
    pg: postgres.PostgresStores, slug: str
) -> None:
    seen: asyncio.Queue[str | None] = asyncio.Queue()
    failed = False

    async def listener(changed: str | None) -> None:
        nonlocal failed
        await seen.put(changed)
        if changed is not None and not failed:
            failed = True
            raise RuntimeError("listener bug")

    task = asyncio.create_task(pg.directory.watch(listener))
    try:
        assert await next_event(seen) is None
        await pg.directory.add_company(draft(slug))
        assert await next_event(seen) == slug
        assert await next_event(seen) is None  # the failure forced a full reload
        assert not task.done()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
