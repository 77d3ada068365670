"""NotifyStore and ContactStore on PostgreSQL: the notification cascade's jobs,
marks, contacts and push subscriptions."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio

from storage import postgres
from storage.errors import NotFound
from storage.models import (
    BatchExtras,
    Channel,
    CompanyDraft,
    Contact,
    Conversation,
    DeskRouting,
    NewMessage,
    NotifyJob,
    Party,
    PushSubscription,
    ReadMark,
    StepDue,
)
from storage.postgres import notify

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

Sql = asyncpg.Connection  # the plain connection of the `sql` fixture

CUSTOMER = "carol@localhost"
AGENT = "bob@localhost"
DOMAIN = "biz.localhost"
SECOND = dt.timedelta(seconds=1)
QUIET = 900.0

COMPANY, CUSTOMER_PARTY = Party.COMPANY, Party.CUSTOMER
EMAIL, PUSH = Channel.EMAIL, Channel.PUSH


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def near(a: dt.datetime, b: dt.datetime, tolerance: float = 5.0) -> bool:
    return abs((a - b).total_seconds()) <= tolerance


@pytest_asyncio.fixture
async def conv(pg: postgres.PostgresStores, sql: Sql, slug: str) -> Conversation:
    """An empty job queue and a new conversation (its company has the fixture's slug)."""
    await sql.execute("DELETE FROM notify_jobs")
    company = await pg.directory.add_company(CompanyDraft(slug=slug, name=slug))
    [conversation] = await pg.conversations.open_many([(company.id, CUSTOMER, None)])
    return conversation


async def archive(
    pg: postgres.PostgresStores, sql: Sql, conv: Conversation, *authors: Party
) -> list[int]:
    """Archive one message per author given; returns their ids."""
    batch = [
        NewMessage(
            conversation_id=conv.id,
            author=author,
            sender_jid=CUSTOMER if author is Party.CUSTOMER else AGENT,
            body=f"m{n}",
            stanza_id=str(uuid.uuid4()),
            client_id=None,
            client_key=None,
            pending=False,
            ts=now(),
        )
        for n, author in enumerate(authors)
    ]
    await pg.archive.append_batch(batch)
    rows = await sql.fetch(
        "SELECT id FROM messages WHERE stanza_id = ANY($1::text[]) ORDER BY id",
        [m.stanza_id for m in batch],
    )
    return [row["id"] for row in rows]


async def job_row(sql: Sql, job_id: int) -> asyncpg.Record:
    row = await sql.fetchrow(
        "SELECT state, due_at, attempts, leased_until, last_error, finished_at"
        " FROM notify_jobs WHERE id = $1",
        job_id,
    )
    assert row is not None
    return row


async def pending(sql: Sql, conv: Conversation) -> list[tuple[str, str, dt.datetime]]:
    rows = await sql.fetch(
        "SELECT party, channel, due_at FROM notify_jobs"
        " WHERE conversation_id = $1 AND state = 'pending' ORDER BY party, channel",
        conv.id,
    )
    return [(row["party"], row["channel"], row["due_at"]) for row in rows]


async def claim_one(pg: postgres.PostgresStores, at: dt.datetime | None = None) -> NotifyJob:
    [job] = await pg.notify.claim(at or now(), 10, 60.0)
    return job


# -- schedule ----------------------------------------------------------------------


async def test_schedule_creates_one_pending_job_per_triple(
    pg: postgres.PostgresStores, sql: Sql, conv: Conversation
) -> None:
    t = now()
    await pg.notify.schedule(
        [
            (conv.id, COMPANY, EMAIL, t + 60 * SECOND),
            (conv.id, CUSTOMER_PARTY, PUSH, t + 10 * SECOND),
            (conv.id, CUSTOMER_PARTY, EMAIL, t + 180 * SECOND),
            (conv.id, COMPANY, EMAIL, t + 30 * SECOND),  # the same triple: the earliest wins
        ],
        QUIET,
    )

    assert await pending(sql, conv) == [
        ("company", "email", t + 30 * SECOND),
        ("customer", "email", t + 180 * SECOND),
        ("customer", "push", t + 10 * SECOND),
    ]


async def test_a_second_schedule_keeps_the_first_due_time(
    pg: postgres.PostgresStores, sql: Sql, conv: Conversation
) -> None:
    t = now() + 60 * SECOND
    await pg.notify.schedule([(conv.id, COMPANY, EMAIL, t)], QUIET)
    await pg.notify.schedule([(conv.id, COMPANY, EMAIL, t + 30 * SECOND)], QUIET)
    await pg.notify.schedule([(conv.id, COMPANY, EMAIL, t - 30 * SECOND)], QUIET)

    assert await pending(sql, conv) == [("company", "email", t)]


async def test_concurrent_schedules_make_one_job(
    pg: postgres.PostgresStores, sql: Sql, conv: Conversation
) -> None:
    t = now()
    await asyncio.gather(
        *(pg.notify.schedule([(conv.id, COMPANY, EMAIL, t + n * SECOND)], QUIET) for n in range(8))
    )

    assert len(await pending(sql, conv)) == 1


async def test_schedule_skips_unknown_conversations(
    pg: postgres.PostgresStores, sql: Sql, conv: Conversation
) -> None:
    t = now()
    await pg.notify.schedule([(-1, COMPANY, EMAIL, t), (conv.id, COMPANY, EMAIL, t)], QUIET)
    await pg.notify.schedule([], QUIET)

    assert await pending(sql, conv) == [("company", "email", t)]
    assert await sql.fetchval("SELECT count(*) FROM notify_jobs") == 1


async def test_quiet_period_after_a_sending(
    pg: postgres.PostgresStores, sql: Sql, conv: Conversation
) -> None:
    [m1] = await archive(pg, sql, conv, Party.CUSTOMER)
    await pg.notify.schedule([(conv.id, COMPANY, EMAIL, now())], QUIET)
    job = await claim_one(pg)
    await pg.notify.sent(job.id, m1)
    sent_at = await sql.fetchval(
        "SELECT sent_at FROM notify_sent WHERE conversation_id = $1"
        " AND party = 'company' AND channel = 'email'",
        conv.id,
    )

    # Soon after: the new job waits for the quiet period ...
    t = now()
    await pg.notify.schedule(
        [
            (conv.id, COMPANY, EMAIL, t),
            (conv.id, COMPANY, PUSH, t),
            (conv.id, CUSTOMER_PARTY, EMAIL, t),
        ],
        QUIET,
    )
    # ... of that triple only.
    assert await pending(sql, conv) == [
        ("company", "email", sent_at + dt.timedelta(seconds=QUIET)),
        ("company", "push", t),
        ("customer", "email", t),
    ]
    assert await pg.notify.claim(now(), 10, 60.0) != []  # the other two
    assert await pg.notify.claim(now(), 10, 60.0) == []

    # A due time beyond the quiet period stays as given.
    await sql.execute("DELETE FROM notify_jobs")
    late = sent_at + dt.timedelta(seconds=QUIET + 60)
    await pg.notify.schedule([(conv.id, COMPANY, EMAIL, late)], QUIET)
    assert await pending(sql, conv) == [("company", "email", late)]


# -- claim ---------------------------------------------------------------------------


async def test_claim_leases_due_jobs_oldest_first(
    pg: postgres.PostgresStores, sql: Sql, conv: Conversation, slug: str
) -> None:
    company_id = conv.company_id
    others = await pg.conversations.open_many(
        [(company_id, f"c{n}@localhost", None) for n in range(3)]
    )
    t = now()
    await pg.notify.schedule(
        [
            (others[0].id, COMPANY, EMAIL, t - 10 * SECOND),
            (others[1].id, COMPANY, EMAIL, t - 30 * SECOND),
            (others[2].id, COMPANY, EMAIL, t - 20 * SECOND),
            (conv.id, COMPANY, EMAIL, t + 60 * SECOND),  # not due
        ],
        QUIET,
    )

    first = await pg.notify.claim(t, 2, 60.0)
    rest = await pg.notify.claim(t, 10, 60.0)

    assert [(j.conversation_id, j.due_at) for j in first] == [
        (others[1].id, t - 30 * SECOND),
        (others[2].id, t - 20 * SECOND),
    ]
    assert [j.conversation_id for j in rest] == [others[0].id]
    assert all((j.party, j.channel, j.attempts) == (COMPANY, EMAIL, 0) for j in first + rest)
    leases = await sql.fetch(
        "SELECT leased_until FROM notify_jobs WHERE id = ANY($1::bigint[])",
        [j.id for j in first + rest],
    )
    assert all(row["leased_until"] == t + 60 * SECOND for row in leases)
    assert await pg.notify.claim(t, 10, 60.0) == []  # leased: nobody else gets them
    assert await pg.notify.claim(t, 0, 60.0) == []


async def test_concurrent_claimers_get_disjoint_jobs(
    pg: postgres.PostgresStores, conv: Conversation
) -> None:
    opened = await pg.conversations.open_many(
        [(conv.company_id, f"c{n}@localhost", None) for n in range(40)]
    )
    t = now()
    await pg.notify.schedule(
        [(c.id, party, channel, t) for c in opened for party in Party for channel in Channel],
        QUIET,
    )

    async def drain() -> list[NotifyJob]:
        taken: list[NotifyJob] = []
        while batch := await pg.notify.claim(t, 3, 60.0):
            taken += batch
        return taken

    results = await asyncio.gather(drain(), drain(), drain())

    ids = [job.id for jobs in results for job in jobs]
    assert len(ids) == len(set(ids)) == 160


async def test_an_expired_lease_gives_the_job_back(
    pg: postgres.PostgresStores, conv: Conversation
) -> None:
    t = now()
    await pg.notify.schedule([(conv.id, CUSTOMER_PARTY, PUSH, t)], QUIET)
    job = await claim_one(pg, t)

    assert await pg.notify.claim(t + 59 * SECOND, 10, 60.0) == []
    # The process died: 60 s later its lease has run out.
    again = await claim_one(pg, t + 61 * SECOND)
    assert again == job
    assert await pg.notify.claim(t + 62 * SECOND, 10, 60.0) == []


# -- unseen and the marks ----------------------------------------------------------


async def test_unseen_follows_direction_seen_and_notified_marks(
    pg: postgres.PostgresStores, sql: Sql, conv: Conversation
) -> None:
    in1, out1, in2 = await archive(pg, sql, conv, Party.CUSTOMER, Party.COMPANY, Party.CUSTOMER)
    t = now()
    await pg.notify.schedule(
        [
            (conv.id, COMPANY, EMAIL, t),
            (conv.id, COMPANY, PUSH, t),
            (conv.id, CUSTOMER_PARTY, EMAIL, t),
        ],
        QUIET,
    )
    jobs = {(j.party, j.channel): j for j in await pg.notify.claim(t, 10, 60.0)}
    company_email = jobs[COMPANY, EMAIL]

    unseen = await pg.notify.unseen(company_email)
    assert unseen.conversation == conv
    assert [m.id for m in unseen.messages] == [in1, in2]
    assert {m.author for m in unseen.messages} == {Party.CUSTOMER}
    assert [m.id for m in (await pg.notify.unseen(jobs[CUSTOMER_PARTY, EMAIL])).messages] == [out1]

    # Email sent up to in1: the email job no longer sees it, the push job does.
    await pg.notify.sent(company_email.id, in1)
    assert [m.id for m in (await pg.notify.unseen(company_email)).messages] == [in2]
    assert [m.id for m in (await pg.notify.unseen(jobs[COMPANY, PUSH])).messages] == [in1, in2]

    # The company read everything: nothing is unseen on any channel.
    await pg.notify.mark_seen([(conv.id, COMPANY)])
    assert (await pg.notify.unseen(jobs[COMPANY, PUSH])).messages == []
    assert (await pg.notify.unseen(company_email)).messages == []
    # ... which says nothing about the customer's side.
    assert [m.id for m in (await pg.notify.unseen(jobs[CUSTOMER_PARTY, EMAIL])).messages] == [out1]

    [in3] = await archive(pg, sql, conv, Party.CUSTOMER)
    assert [m.id for m in (await pg.notify.unseen(jobs[COMPANY, PUSH])).messages] == [in3]


async def test_unseen_is_capped_to_the_newest(
    pg: postgres.PostgresStores, sql: Sql, conv: Conversation
) -> None:
    ids = await archive(pg, sql, conv, *[Party.COMPANY] * (notify.UNSEEN_LIMIT + 5))
    await pg.notify.schedule([(conv.id, CUSTOMER_PARTY, EMAIL, now())], QUIET)
    job = await claim_one(pg)

    unseen = await pg.notify.unseen(job)

    assert [m.id for m in unseen.messages] == ids[-notify.UNSEEN_LIMIT :]


async def test_mark_seen_moves_marks_forward_only(
    pg: postgres.PostgresStores, sql: Sql, conv: Conversation
) -> None:
    empty = (await pg.conversations.open_many([(conv.company_id, "quiet@localhost", None)]))[0]
    [in1, out1] = await archive(pg, sql, conv, Party.CUSTOMER, Party.COMPANY)

    async def seen() -> dict[tuple[int, str], int]:
        rows = await sql.fetch(
            "SELECT conversation_id, party, seen_message_id FROM notify_seen"
            " WHERE conversation_id = ANY($1::bigint[])",
            [conv.id, empty.id],
        )
        return {(r["conversation_id"], r["party"]): r["seen_message_id"] for r in rows}

    # Repeats, a conversation without messages, one that does not exist.
    await pg.notify.mark_seen(
        [(conv.id, COMPANY), (conv.id, COMPANY), (empty.id, COMPANY), (-1, CUSTOMER_PARTY)]
    )
    assert await seen() == {(conv.id, "company"): out1}
    assert out1 > in1

    await pg.notify.mark_seen([(conv.id, CUSTOMER_PARTY)])
    [in2] = await archive(pg, sql, conv, Party.CUSTOMER)
    await pg.notify.mark_seen([(conv.id, COMPANY)])
    assert await seen() == {(conv.id, "company"): in2, (conv.id, "customer"): out1}

    # A mark never goes back.
    await sql.execute(
        "UPDATE notify_seen SET seen_message_id = $2 WHERE conversation_id = $1",
        conv.id,
        in2 + 1000,
    )
    await pg.notify.mark_seen([(conv.id, COMPANY), (conv.id, CUSTOMER_PARTY)])
    assert set((await seen()).values()) == {in2 + 1000}
    await pg.notify.mark_seen([])


async def test_sent_keeps_the_highest_notified_mark(
    pg: postgres.PostgresStores, sql: Sql, conv: Conversation
) -> None:
    in1, in2 = await archive(pg, sql, conv, Party.CUSTOMER, Party.CUSTOMER)
    await pg.notify.schedule([(conv.id, COMPANY, PUSH, now())], 0)
    first = await claim_one(pg)
    await pg.notify.sent(first.id, in2)
    await pg.notify.schedule([(conv.id, COMPANY, PUSH, now())], 0)
    second = await claim_one(pg)

    await pg.notify.sent(second.id, in1)  # a late, lower mark

    assert (
        await sql.fetchval(
            "SELECT notified_id FROM notify_sent WHERE conversation_id = $1 AND channel = 'push'",
            conv.id,
        )
        == in2
    )


# -- the job's end -----------------------------------------------------------------


async def test_sent_finishes_the_job(
    pg: postgres.PostgresStores, sql: Sql, conv: Conversation
) -> None:
    [in1] = await archive(pg, sql, conv, Party.CUSTOMER)
    await pg.notify.schedule([(conv.id, COMPANY, EMAIL, now())], QUIET)
    job = await claim_one(pg)

    await pg.notify.sent(job.id, in1)

    row = await job_row(sql, job.id)
    assert (row["state"], row["leased_until"], row["attempts"]) == ("done", None, 0)
    assert near(row["finished_at"], now())
    marks = await sql.fetchrow(
        "SELECT notified_id, sent_at FROM notify_sent WHERE conversation_id = $1"
        " AND party = 'company' AND channel = 'email'",
        conv.id,
    )
    assert marks is not None
    assert marks["notified_id"] == in1 and near(marks["sent_at"], now())
    assert await pending(sql, conv) == []
    await pg.notify.sent(job.id, in1)  # twice is harmless
    assert (await job_row(sql, job.id))["finished_at"] == row["finished_at"]


async def test_cancel(pg: postgres.PostgresStores, sql: Sql, conv: Conversation) -> None:
    await pg.notify.schedule([(conv.id, CUSTOMER_PARTY, EMAIL, now())], QUIET)
    job = await claim_one(pg)

    await pg.notify.cancel(job.id, "seen meanwhile")
    await pg.notify.cancel(job.id, "again")  # a finished job stays as it is

    row = await job_row(sql, job.id)
    assert (row["state"], row["last_error"], row["leased_until"]) == (
        "cancelled",
        "seen meanwhile",
        None,
    )
    assert row["finished_at"] is not None
    # The triple is free for a new job, due as given (nothing was sent).
    t = now()
    await pg.notify.schedule([(conv.id, CUSTOMER_PARTY, EMAIL, t)], QUIET)
    assert await pending(sql, conv) == [("customer", "email", t)]


async def test_retry_then_fail(pg: postgres.PostgresStores, sql: Sql, conv: Conversation) -> None:
    await pg.notify.schedule([(conv.id, COMPANY, EMAIL, now())], QUIET)
    job = await claim_one(pg)

    await pg.notify.retry(job.id, 30.0, "smtp: 451")

    row = await job_row(sql, job.id)
    assert (row["state"], row["attempts"], row["leased_until"], row["last_error"]) == (
        "pending",
        1,
        None,
        "smtp: 451",
    )
    assert near(row["due_at"], now() + 30 * SECOND)
    assert row["finished_at"] is None
    assert await pg.notify.claim(now(), 10, 60.0) == []  # not due yet

    await pg.notify.retry(job.id, 0, "smtp: 421")
    again = await claim_one(pg)
    assert (again.id, again.attempts) == (job.id, 2)

    await pg.notify.fail(job.id, "smtp: 550 no such user")
    await pg.notify.retry(job.id, 0, "too late")  # a failed job is never retried

    row = await job_row(sql, job.id)
    assert (row["state"], row["attempts"], row["last_error"], row["leased_until"]) == (
        "failed",
        3,
        "smtp: 550 no such user",
        None,
    )
    assert row["finished_at"] is not None
    assert await pg.notify.claim(now() + 3600 * SECOND, 10, 60.0) == []


async def test_scheduled_while_leased_gets_a_follow_up_after_sent(
    pg: postgres.PostgresStores, sql: Sql, conv: Conversation
) -> None:
    [in1] = await archive(pg, sql, conv, Party.CUSTOMER)
    await pg.notify.schedule([(conv.id, COMPANY, EMAIL, now())], QUIET)
    job = await claim_one(pg)
    assert [m.id for m in (await pg.notify.unseen(job)).messages] == [in1]

    # A message arrives while the email is being written: batched into the
    # job that is in flight (which keeps its due time and lease) ...
    [in2] = await archive(pg, sql, conv, Party.CUSTOMER)
    t = now()
    await pg.notify.schedule([(conv.id, COMPANY, EMAIL, t + 60 * SECOND)], QUIET)
    await pg.notify.schedule([(conv.id, COMPANY, EMAIL, t + 30 * SECOND)], QUIET)
    assert await pending(sql, conv) == [("company", "email", job.due_at)]
    assert await pg.notify.claim(now(), 10, 60.0) == []

    # ... and, as the job only covered in1, a follow-up comes after the quiet period.
    await pg.notify.sent(job.id, in1)

    [(_, _, due_at)] = await pending(sql, conv)
    assert near(due_at, now() + dt.timedelta(seconds=QUIET))
    follow_up = await claim_one(pg, due_at)
    assert follow_up.id != job.id
    assert [m.id for m in (await pg.notify.unseen(follow_up)).messages] == [in2]


async def test_scheduled_while_leased_gets_a_follow_up_after_cancel(
    pg: postgres.PostgresStores, sql: Sql, conv: Conversation
) -> None:
    await pg.notify.schedule([(conv.id, CUSTOMER_PARTY, PUSH, now())], QUIET)
    job = await claim_one(pg)
    t = now() + 10 * SECOND
    await pg.notify.schedule([(conv.id, CUSTOMER_PARTY, PUSH, t)], QUIET)

    await pg.notify.cancel(job.id, "nothing unseen")

    assert await pending(sql, conv) == [("customer", "push", t)]  # nothing was sent: no quiet


async def test_retry_covers_what_was_scheduled_while_leased(
    pg: postgres.PostgresStores, sql: Sql, conv: Conversation
) -> None:
    await pg.notify.schedule([(conv.id, COMPANY, EMAIL, now())], QUIET)
    job = await claim_one(pg)
    await pg.notify.schedule([(conv.id, COMPANY, EMAIL, now())], QUIET)

    await pg.notify.retry(job.id, 0, "smtp: 421")
    again = await claim_one(pg)
    await pg.notify.sent(again.id, 0)

    # The retried run read unseen() anew: no follow-up.
    assert await pending(sql, conv) == []


async def test_a_deleted_conversation_takes_its_jobs_and_marks(
    pg: postgres.PostgresStores, sql: Sql, conv: Conversation, slug: str
) -> None:
    [in1] = await archive(pg, sql, conv, Party.CUSTOMER)
    t = now()
    await pg.notify.schedule([(conv.id, COMPANY, EMAIL, t), (conv.id, COMPANY, PUSH, t)], 0)
    first, second = await pg.notify.claim(t, 10, 60.0)
    await pg.notify.sent(first.id, in1)
    await pg.notify.mark_seen([(conv.id, COMPANY)])

    await pg.directory.remove_company(slug)

    for table in ("notify_jobs", "notify_seen", "notify_sent"):
        count = await sql.fetchval(
            f"SELECT count(*) FROM {table} WHERE conversation_id = $1", conv.id
        )
        assert count == 0, table
    with pytest.raises(NotFound):
        await pg.notify.unseen(second)
    # The worker's last calls about it do nothing.
    await pg.notify.sent(second.id, in1)
    await pg.notify.cancel(second.id, "gone")
    await pg.notify.retry(second.id, 1.0, "gone")
    await pg.notify.fail(second.id, "gone")
    await pg.notify.schedule([(conv.id, COMPANY, EMAIL, t)], QUIET)
    await pg.notify.mark_seen([(conv.id, COMPANY)])
    assert await sql.fetchval("SELECT count(*) FROM notify_jobs") == 0


# -- contacts ----------------------------------------------------------------------


@pytest_asyncio.fixture
async def with_domain(pg_dsn: str) -> AsyncIterator[postgres.PostgresStores]:
    """Stores that know the component's domain (as the component opens them)."""
    stores = await postgres.connect(
        pg_dsn, min_size=1, max_size=2, command_timeout=10.0, company_domain=DOMAIN
    )
    yield stores
    await stores.close()


def address() -> str:
    return f"u-{uuid.uuid4().hex[:12]}@localhost"


async def test_an_unknown_contact_has_defaults(pg: postgres.PostgresStores) -> None:
    who = address()
    assert await pg.contacts.get(who) == Contact(who, None)
    assert await pg.contacts.push_subscriptions(who) == []


async def test_email_confirmation(pg: postgres.PostgresStores) -> None:
    who = address()
    await pg.contacts.request_email(who, "old@example.org", "hash-1")
    await pg.contacts.request_email(who, "carol@example.org", "hash-2")  # replaces it

    assert await pg.contacts.get(who) == Contact(who, None, pending_email="carol@example.org")
    assert await pg.contacts.confirm_email(who, "hash-1") is None
    assert await pg.contacts.confirm_email(address(), "hash-2") is None
    assert await pg.contacts.confirm_email(who, "hash-2") == "carol@example.org"
    assert await pg.contacts.get(who) == Contact(who, "carol@example.org")
    assert await pg.contacts.confirm_email(who, "hash-2") is None  # used up

    # A new address waits for its own confirmation; the confirmed one stays.
    # The language it was asked in becomes the emails' (none given: kept).
    await pg.contacts.request_email(who, "new@example.org", "hash-3", "ru")
    assert (await pg.contacts.get(who)).lang == "ru"
    await pg.contacts.request_email(who, "new@example.org", "hash-3")
    assert await pg.contacts.get(who) == Contact(
        who, "carol@example.org", pending_email="new@example.org", lang="ru"
    )
    assert await pg.contacts.confirm_email(who, "hash-3") == "new@example.org"
    assert await pg.contacts.get(who) == Contact(who, "new@example.org", lang="ru")


async def test_opt_outs_per_channel(pg: postgres.PostgresStores) -> None:
    who = address()
    await pg.contacts.set_opt_out(who, Channel.PUSH, True)
    assert await pg.contacts.get(who) == Contact(who, None, push_opt_out=True)

    await pg.contacts.request_email(who, "carol@example.org", "h")
    await pg.contacts.confirm_email(who, "h")
    await pg.contacts.set_opt_out(who, Channel.EMAIL, True)
    assert await pg.contacts.get(who) == Contact(
        who, "carol@example.org", email_opt_out=True, push_opt_out=True
    )

    await pg.contacts.set_opt_out(who, Channel.PUSH, False)
    await pg.contacts.set_opt_out(who, Channel.PUSH, False)
    assert await pg.contacts.get(who) == Contact(who, "carol@example.org", email_opt_out=True)

    other = address()
    await pg.contacts.set_opt_out(other, Channel.EMAIL, True)
    assert await pg.contacts.get(other) == Contact(other, None, email_opt_out=True)


async def test_a_company_falls_back_to_the_directory_email(
    pg: postgres.PostgresStores, with_domain: postgres.PostgresStores, slug: str
) -> None:
    await pg.directory.add_company(CompanyDraft(slug=slug, name=slug, email="shop@example.org"))
    jid = f"{slug}@{DOMAIN}"
    contacts = with_domain.contacts

    assert await contacts.get(jid) == Contact(jid, "shop@example.org")
    # Another domain is not the company: a customer who picked the slug as a name.
    namesake = f"{slug}@localhost"
    assert await contacts.get(namesake) == Contact(namesake, None)

    # Its own confirmed address wins.
    await contacts.request_email(jid, "desk@example.org", "h")
    assert await contacts.get(jid) == Contact(jid, "shop@example.org", "desk@example.org")
    await contacts.confirm_email(jid, "h")
    assert await contacts.get(jid) == Contact(jid, "desk@example.org")


async def test_a_company_that_opted_out_has_no_email(
    with_domain: postgres.PostgresStores, pg: postgres.PostgresStores, slug: str
) -> None:
    await pg.directory.add_company(CompanyDraft(slug=slug, name=slug, email="shop@example.org"))
    jid = f"{slug}@{DOMAIN}"

    await with_domain.contacts.set_opt_out(jid, Channel.EMAIL, True)

    assert await with_domain.contacts.get(jid) == Contact(jid, None, email_opt_out=True)
    await with_domain.contacts.set_opt_out(jid, Channel.EMAIL, False)
    assert await with_domain.contacts.get(jid) == Contact(jid, "shop@example.org")


async def test_without_a_domain_any_slug_address_is_the_company(
    pg: postgres.PostgresStores, slug: str
) -> None:
    await pg.directory.add_company(CompanyDraft(slug=slug, name=slug, email="shop@example.org"))

    assert (await pg.contacts.get(f"{slug}@{DOMAIN}")).email == "shop@example.org"
    assert (await pg.contacts.get(f"{slug}@elsewhere")).email == "shop@example.org"
    assert (await pg.contacts.get(slug)).email is None  # not a JID with a local part


async def test_push_subscriptions(pg: postgres.PostgresStores) -> None:
    carol, dave = address(), address()
    endpoint = f"https://push.example.org/{uuid.uuid4().hex}"
    first = await pg.contacts.add_push(carol, endpoint, "key-1", "auth-1")
    second = await pg.contacts.add_push(carol, endpoint + "-2", "key-2", "auth-2")

    assert await pg.contacts.push_subscriptions(carol) == [
        PushSubscription(first, carol, endpoint, "key-1", "auth-1"),
        PushSubscription(second, carol, endpoint + "-2", "key-2", "auth-2"),
    ]

    # The same endpoint again: refreshed in place, here under another account.
    assert await pg.contacts.add_push(dave, endpoint, "key-3", "auth-3") == first
    assert await pg.contacts.push_subscriptions(dave) == [
        PushSubscription(first, dave, endpoint, "key-3", "auth-3")
    ]
    assert [s.id for s in await pg.contacts.push_subscriptions(carol)] == [second]

    await pg.contacts.remove_push(second)
    await pg.contacts.remove_push(second)  # twice is harmless
    assert await pg.contacts.push_subscriptions(carol) == []
    assert len(await pg.contacts.push_subscriptions(dave)) == 1


async def test_postpone_keeps_attempts_and_frees_the_lease(
    pg: postgres.PostgresStores, sql: Sql, conv: Conversation
) -> None:
    await pg.notify.schedule([(conv.id, COMPANY, EMAIL, now())], QUIET)
    job = await claim_one(pg)
    later = now() + 3600 * SECOND
    await pg.notify.postpone(job.id, later)
    row = await job_row(sql, job.id)
    assert (row["state"], row["attempts"], row["leased_until"]) == ("pending", 0, None)
    assert near(row["due_at"], later)
    assert await pg.notify.claim(now(), 10, 60.0) == []


async def test_quiet_hours_are_stored_and_cleared(pg: postgres.PostgresStores) -> None:
    address = "quiet@localhost"
    assert (await pg.contacts.get(address)).quiet_hours is None
    await pg.contacts.set_quiet_hours(address, "22:00-07:00", "Europe/Berlin")
    contact = await pg.contacts.get(address)
    assert (contact.quiet_hours, contact.quiet_timezone) == ("22:00-07:00", "Europe/Berlin")
    await pg.contacts.set_quiet_hours(address, None, None)
    assert (await pg.contacts.get(address)).quiet_hours is None


async def test_a_batch_records_marks_steps_and_routing_in_its_archive_statement(
    pg: postgres.PostgresStores, sql: Sql, conv: Conversation
) -> None:
    """The features' extras ride on the batch's one statement: what depends on a
    message is recorded only if that message is archived now, not as a duplicate."""

    def message(body: str, key: str, author: Party = Party.CUSTOMER) -> NewMessage:
        return NewMessage(
            conversation_id=conv.id,
            author=author,
            sender_jid=CUSTOMER if author is Party.CUSTOMER else AGENT,
            body=body,
            stanza_id=str(uuid.uuid4()),
            client_id=key,
            client_key=key,
            pending=False,
            ts=now(),
        )

    first = message("first", "k1")
    await pg.archive.append_batch([first])
    await sql.execute(
        "INSERT INTO desk_conversations (conversation_id, status, assignee)"
        " VALUES ($1, 'resolved', $2)",
        conv.id,
        AGENT,
    )
    fresh, again, answer = message("fresh", "k2"), message("first", "k1"), message("hi", "a1")
    t = now()
    extras = BatchExtras(
        seen=[
            ReadMark(conv.id, CUSTOMER_PARTY, written=fresh.stanza_id),
            ReadMark(conv.id, COMPANY, written=again.stanza_id),  # a duplicate: nothing
        ],
        steps=[
            StepDue(conv.id, COMPANY, EMAIL, t, QUIET, written=fresh.stanza_id),
            StepDue(conv.id, CUSTOMER_PARTY, EMAIL, t, QUIET, written=again.stanza_id),
            StepDue(-1, COMPANY, PUSH, t, QUIET),  # no such conversation: skipped
        ],
        routed=[conv.id],
        reopen=[conv.id],
    )

    archived = await pg.archive.append_batch([fresh, again], extras=extras)

    assert [r.duplicate for r in archived.results] == [False, True]
    assert archived.read.routing == DeskRouting(assignees={conv.id: AGENT}, reopened=[conv.id])
    assert (
        await sql.fetchval(
            "SELECT status FROM desk_conversations WHERE conversation_id = $1", conv.id
        )
        == "open"
    )
    fresh_id = await sql.fetchval("SELECT id FROM messages WHERE stanza_id = $1", fresh.stanza_id)
    # The batch's own message counts as read by its writer.
    marks = await sql.fetch(
        "SELECT party, seen_message_id FROM notify_seen WHERE conversation_id = $1", conv.id
    )
    assert {(r["party"], r["seen_message_id"]) for r in marks} == {("customer", fresh_id)}
    jobs = await sql.fetch(
        "SELECT party, channel, due_at FROM notify_jobs WHERE conversation_id = $1", conv.id
    )
    assert [(r["party"], r["channel"]) for r in jobs] == [("company", "email")]
    assert near(jobs[0]["due_at"], t)

    # A batch of markers alone (nothing archived): the marks read what is archived.
    await pg.archive.append_batch([answer])
    answer_id = await sql.fetchval("SELECT id FROM messages WHERE stanza_id = $1", answer.stanza_id)
    markers = BatchExtras(seen=[ReadMark(conv.id, CUSTOMER_PARTY)])
    archived = await pg.archive.append_batch([], extras=markers)
    assert archived.results == [] and archived.read.routing == DeskRouting({}, [])
    assert (
        await sql.fetchval(
            "SELECT seen_message_id FROM notify_seen"
            " WHERE conversation_id = $1 AND party = 'customer'",
            conv.id,
        )
        == answer_id
    )
