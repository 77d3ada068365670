"""RosterJobStore on PostgreSQL: claim, lease, done, retry_later, ordering, watch."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio

from storage import postgres
from storage.models import CompanyDraft, ImportedCompany, Role, RosterJob, RosterOp

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

Sql = asyncpg.Connection  # the plain connection of the `sql` fixture


@pytest_asyncio.fixture
async def company(pg: postgres.PostgresStores, sql: Sql, slug: str) -> str:
    """An empty queue and a new company; returns its slug."""
    await sql.execute("DELETE FROM roster_jobs")
    await pg.directory.add_company(CompanyDraft(slug=slug, name="Pizza"))
    return slug


async def test_claim_leases_due_jobs(pg: postgres.PostgresStores, sql: Sql, company: str) -> None:
    await pg.directory.add_agent(company, "bob@localhost", Role.AGENT)
    await pg.directory.add_agent(company, "alice@localhost", Role.ADMIN)

    jobs = await pg.roster_jobs.claim(10)

    assert [(j.op, j.company_slug, j.company_name, j.agent_jid, j.attempts) for j in jobs] == [
        (RosterOp.ADD, company, "Pizza", "bob@localhost", 1),
        (RosterOp.ADD, company, "Pizza", "alice@localhost", 1),
    ]
    leased = await sql.fetchval(
        "SELECT bool_and(leased_until > now() + interval '50 seconds') FROM roster_jobs"
    )
    assert leased
    assert await pg.roster_jobs.claim(10) == []  # leased: nobody else gets them


async def test_claim_respects_the_limit(pg: postgres.PostgresStores, company: str) -> None:
    for n in range(5):
        await pg.directory.add_agent(company, f"agent{n}@localhost", Role.AGENT)

    first = await pg.roster_jobs.claim(2)
    rest = await pg.roster_jobs.claim(10)

    assert len(first) == 2 and len(rest) == 3
    assert {j.id for j in first}.isdisjoint(j.id for j in rest)


async def test_done_deletes_the_job(pg: postgres.PostgresStores, sql: Sql, company: str) -> None:
    await pg.directory.add_agent(company, "bob@localhost", Role.AGENT)
    [job] = await pg.roster_jobs.claim(10)

    await pg.roster_jobs.done(job.id)
    await pg.roster_jobs.done(job.id)  # twice is harmless

    assert await sql.fetchval("SELECT count(*) FROM roster_jobs") == 0


async def test_retry_later(pg: postgres.PostgresStores, sql: Sql, company: str) -> None:
    await pg.directory.add_agent(company, "bob@localhost", Role.AGENT)
    [job] = await pg.roster_jobs.claim(10)

    await pg.roster_jobs.retry_later(job.id, 30.0, "ejabberd: 503")

    row = await sql.fetchrow(
        "SELECT leased_until, last_error, next_attempt_at - now() AS wait FROM roster_jobs"
        " WHERE id = $1",
        job.id,
    )
    assert row is not None
    assert row["leased_until"] is None
    assert row["last_error"] == "ejabberd: 503"
    assert 25 < row["wait"].total_seconds() <= 30
    assert await pg.roster_jobs.claim(10) == []  # not due yet

    await pg.roster_jobs.retry_later(job.id, 0, "again")
    [again] = await pg.roster_jobs.claim(10)
    assert (again.id, again.attempts) == (job.id, 2)


async def test_expired_lease_gives_the_job_back(
    pg: postgres.PostgresStores, sql: Sql, company: str
) -> None:
    await pg.directory.add_agent(company, "bob@localhost", Role.AGENT)
    [job] = await pg.roster_jobs.claim(10)

    # The worker died: its lease runs out.
    await sql.execute(
        "UPDATE roster_jobs SET leased_until = now() - interval '1 second' WHERE id = $1", job.id
    )

    [again] = await pg.roster_jobs.claim(10)
    assert (again.id, again.attempts) == (job.id, 2)


async def test_one_roster_item_at_a_time_in_order(
    pg: postgres.PostgresStores, company: str
) -> None:
    await pg.directory.add_agent(company, "bob@localhost", Role.AGENT)
    [add] = await pg.roster_jobs.claim(10)
    # Queued while the "add" is in flight: must not run before it finishes,
    # else the late "add" would put the company back.
    await pg.directory.remove_agent(company, "bob@localhost")

    assert await pg.roster_jobs.claim(10) == []
    await pg.roster_jobs.done(add.id)

    [remove] = await pg.roster_jobs.claim(10)
    assert (remove.op, remove.agent_jid) == (RosterOp.REMOVE, "bob@localhost")


async def test_concurrent_claimers_get_disjoint_jobs(
    pg: postgres.PostgresStores, company: str
) -> None:
    for n in range(40):
        await pg.directory.add_agent(company, f"agent{n}@localhost", Role.AGENT)

    async def drain() -> list[RosterJob]:
        taken: list[RosterJob] = []
        while batch := await pg.roster_jobs.claim(3):
            taken += batch
        return taken

    first, second = await asyncio.gather(drain(), drain())

    ids_first, ids_second = {j.id for j in first}, {j.id for j in second}
    assert ids_first.isdisjoint(ids_second)
    assert len(ids_first | ids_second) == 40


@contextlib.asynccontextmanager
async def watching(pg: postgres.PostgresStores) -> AsyncIterator[asyncio.Queue[None]]:
    """Run roster_jobs.watch() in a task; yield the queue of its wake-ups, once connected."""
    wakeups: asyncio.Queue[None] = asyncio.Queue()

    async def wakeup() -> None:
        await wakeups.put(None)

    task = asyncio.create_task(pg.roster_jobs.watch(wakeup))
    try:
        await asyncio.wait_for(wakeups.get(), 10)  # after connecting
        yield wakeups
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_watch_wakes_up_on_new_jobs(pg: postgres.PostgresStores, company: str) -> None:
    async with watching(pg) as wakeups:
        await pg.directory.add_agent(company, "bob@localhost", Role.AGENT)
        await asyncio.wait_for(wakeups.get(), 10)


async def test_no_job_no_wake_up(pg: postgres.PostgresStores, company: str) -> None:
    async with watching(pg) as wakeups:
        await pg.directory.import_companies([ImportedCompany(CompanyDraft(company, "Pizza"))])
        await asyncio.sleep(0.3)
        assert wakeups.empty()


async def test_resync_rosters_queues_an_add_per_agent(
    pg: postgres.PostgresStores, sql: Sql, company: str
) -> None:
    other = f"{company}-other"
    await pg.directory.add_company(CompanyDraft(slug=other, name="Other"))
    await pg.directory.add_agent(company, "bob@localhost", Role.AGENT)
    await pg.directory.add_agent(other, "eve@localhost", Role.AGENT)
    for job in await pg.roster_jobs.claim(10):
        await pg.roster_jobs.done(job.id)

    assert await pg.directory.resync_rosters([company]) == 1
    [job] = await pg.roster_jobs.claim(10)
    assert (job.op, job.company_slug, job.agent_jid) == (RosterOp.ADD, company, "bob@localhost")
    await pg.roster_jobs.done(job.id)
    # All companies: at least ours (other tests' companies may have agents too).
    assert await pg.directory.resync_rosters() >= 2
    mine = await sql.fetch(
        "SELECT company_slug, agent_jid FROM roster_jobs WHERE company_slug = ANY($1) ORDER BY 1",
        [company, other],
    )
    assert [tuple(r) for r in mine] == [(company, "bob@localhost"), (other, "eve@localhost")]


async def test_an_import_supersedes_waiting_jobs_not_leased_ones(
    pg: postgres.PostgresStores, sql: Sql, company: str
) -> None:
    """Roster jobs queued many at a time keep the rule: the latest intent per item."""
    agents = (("bob@localhost", Role.AGENT), ("eve@localhost", Role.AGENT))
    items = [ImportedCompany(CompanyDraft(slug=company, name="Pizza"), agents=agents)]
    await pg.directory.import_companies(items)
    [leased] = await pg.roster_jobs.claim(1)

    await pg.directory.import_companies(items)
    await pg.directory.import_companies(items)

    rows = await sql.fetch(
        "SELECT agent_jid, leased_until IS NOT NULL AS leased FROM roster_jobs ORDER BY id"
    )
    first, *waiting = [tuple(r) for r in rows]
    assert first == (leased.agent_jid, True)  # in flight: it stays, and runs first
    assert sorted(waiting) == [("bob@localhost", False), ("eve@localhost", False)]


async def test_an_agents_roster_holds_the_companys_open_inbox(
    pg: postgres.PostgresStores, sql: Sql, company: str
) -> None:
    """Migrations 0016 and 0019: each unresolved conversation is a contact of its
    company's agents (local part slug+token, named when the job runs)."""

    async def queued() -> list[tuple[str, str, str]]:
        rows = await sql.fetch(
            "SELECT op, company_slug, agent_jid FROM roster_jobs"
            " WHERE company_slug LIKE $1 || '+%' ORDER BY id",
            company,
        )
        await sql.execute("DELETE FROM roster_jobs")
        return [(r["op"], r["company_slug"], r["agent_jid"]) for r in rows]

    await pg.directory.add_agent(company, "bob@localhost", Role.AGENT)
    cid = await sql.fetchval("SELECT id FROM companies WHERE slug = $1", company)
    a, b = await pg.conversations.open_many(
        [(cid, "ann@localhost", None), (cid, "al@localhost", None)]
    )
    contact_a, contact_b = f"{company}+{a.token}", f"{company}+{b.token}"
    # Named by the worker when it runs (the label is written once, in Python).
    assert await sql.fetchval(
        "SELECT array_agg(DISTINCT company_name) FROM roster_jobs WHERE company_slug LIKE $1",
        f"{company}+%",
    ) == [""]
    assert await queued() == [
        ("add", contact_a, "bob@localhost"),
        ("add", contact_b, "bob@localhost"),
    ]

    # Resolved: out of the roster; reopened: back; renamed: named again.
    await sql.execute(
        "INSERT INTO desk_conversations (conversation_id, status) VALUES ($1, 'resolved')", a.id
    )
    assert await queued() == [("remove", contact_a, "bob@localhost")]
    await sql.execute(
        "UPDATE desk_conversations SET status = 'open' WHERE conversation_id = $1", a.id
    )
    assert await queued() == [("add", contact_a, "bob@localhost")]
    await pg.conversations.open_many([(cid, "al@localhost", "Al")])
    assert await queued() == [("add", contact_b, "bob@localhost")]

    # A new agent gets the unresolved ones; resync queues them again; one who
    # leaves loses them all; a forgotten customer leaves every roster.
    await sql.execute(
        "UPDATE desk_conversations SET status = 'resolved' WHERE conversation_id = $1", a.id
    )
    await queued()
    await pg.directory.add_agent(company, "eve@localhost", Role.AGENT)
    assert await queued() == [("add", contact_b, "eve@localhost")]
    assert await pg.directory.resync_rosters([company]) == 4  # two companies items, two inboxes
    assert sorted(await queued()) == [
        ("add", contact_b, "bob@localhost"),
        ("add", contact_b, "eve@localhost"),
    ]
    await pg.directory.remove_agent(company, "eve@localhost")
    assert sorted(await queued()) == sorted(
        [("remove", contact_a, "eve@localhost"), ("remove", contact_b, "eve@localhost")]
    )
    await pg.customers.forget("al@localhost")
    assert await queued() == [("remove", contact_b, "bob@localhost")]
