"""ResponseTimeStore on PostgreSQL: the median first-response time of a company."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from storage import postgres
from storage.models import CompanyDraft, Conversation, NewMessage, Party

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

AGENT = "bob@localhost"
HOUR = 3600.0
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
SINCE = NOW - dt.timedelta(days=30)


def at(conversation: Conversation, author: Party, ts: dt.datetime) -> NewMessage:
    return NewMessage(
        conversation_id=conversation.id,
        author=author,
        sender_jid=conversation.customer_jid if author is Party.CUSTOMER else AGENT,
        body=f"{author.value} at {ts.isoformat()}",
        stanza_id=str(uuid.uuid4()),
        client_id=None,
        client_key=None,
        pending=False,
        ts=ts,
    )


async def conversations(
    pg: postgres.PostgresStores, slug: str, customers: int
) -> tuple[int, list[Conversation]]:
    company = await pg.directory.add_company(CompanyDraft(slug=slug, name=slug))
    opened = await pg.conversations.open_many(
        [(company.id, f"customer{n}@localhost", None) for n in range(customers)]
    )
    return company.id, opened


async def median(pg: postgres.PostgresStores, company_id: int) -> float | None:
    return await pg.response_times.median_first_response(company_id, since=SINCE, silence_s=HOUR)


async def test_median_of_the_waits_that_ended(pg: postgres.PostgresStores, slug: str) -> None:
    company_id, (a, b, c, d, e) = await conversations(pg, slug, 5)
    t = NOW - dt.timedelta(days=2)
    minute = dt.timedelta(minutes=1)
    hour = dt.timedelta(hours=1)
    IN, OUT = Party.CUSTOMER, Party.COMPANY
    messages = [
        # a: the customer writes twice, the agent answers 10 minutes after the
        # first message (600 s); a follow-up 10 minutes later is no new wait;
        # after three quiet hours, a new wait answered in a minute (60 s).
        at(a, IN, t),
        at(a, IN, t + minute),
        at(a, OUT, t + 10 * minute),
        at(a, IN, t + 20 * minute),
        at(a, OUT, t + 25 * minute),
        at(a, IN, t + 3 * hour),
        at(a, OUT, t + 3 * hour + minute),
        # b: answered in five minutes (300 s).
        at(b, IN, t + hour),
        at(b, OUT, t + hour + 5 * minute),
        # c: never answered: no wait that ended.
        at(c, IN, t),
        # d: the customer asks again two hours later, still unanswered: one
        # wait from the first message (2 h + 30 s = 7230 s).
        at(d, IN, t),
        at(d, IN, t + 2 * hour),
        at(d, OUT, t + 2 * hour + dt.timedelta(seconds=30)),
        # e: forty days ago, out of the period.
        at(e, IN, NOW - dt.timedelta(days=40)),
        at(e, OUT, NOW - dt.timedelta(days=40) + minute),
    ]
    await pg.archive.append_batch(messages)

    # Waits: 60, 300, 600, 7230 -> median (300 + 600) / 2.
    assert await median(pg, company_id) == 450.0


async def test_the_silence_before_the_period_is_known(
    pg: postgres.PostgresStores, slug: str
) -> None:
    company_id, (a,) = await conversations(pg, slug, 1)
    # A message just before the period and one 10 minutes later, inside it:
    # the second follows no silence, so only the first could start a wait,
    # and it started before the period.
    before = SINCE - dt.timedelta(minutes=5)
    await pg.archive.append_batch(
        [
            at(a, Party.CUSTOMER, before),
            at(a, Party.CUSTOMER, before + dt.timedelta(minutes=10)),
            at(a, Party.COMPANY, before + dt.timedelta(minutes=20)),
        ]
    )
    assert await median(pg, company_id) is None


async def test_no_waits_no_median(pg: postgres.PostgresStores, slug: str) -> None:
    company_id, (a, b) = await conversations(pg, slug, 2)
    assert await median(pg, company_id) is None
    # An agent writing first starts no wait; the customer's answer is unanswered.
    t = NOW - dt.timedelta(hours=5)
    await pg.archive.append_batch(
        [
            at(a, Party.COMPANY, t),
            at(a, Party.CUSTOMER, t + dt.timedelta(minutes=1)),
            at(b, Party.CUSTOMER, t),
        ]
    )
    assert await median(pg, company_id) is None
    await pg.archive.append_batch([at(b, Party.COMPANY, t + dt.timedelta(seconds=42))])
    assert await median(pg, company_id) == 42.0


async def test_other_companies_do_not_count(pg: postgres.PostgresStores, slug: str) -> None:
    mine, (a,) = await conversations(pg, slug, 1)
    other, (b,) = await conversations(pg, f"{slug}-other", 1)
    t = NOW - dt.timedelta(hours=3)
    await pg.archive.append_batch(
        [
            at(a, Party.CUSTOMER, t),
            at(a, Party.COMPANY, t + dt.timedelta(seconds=10)),
            at(b, Party.CUSTOMER, t),
            at(b, Party.COMPANY, t + dt.timedelta(seconds=1000)),
        ]
    )
    assert await median(pg, mine) == 10.0
    assert await median(pg, other) == 1000.0
