"""Archive access on PostgreSQL (issue 6): a company's whole archive, the XEP-0313
extended filters, full-text search, bounds, export, retention and forgetting a
customer. Real PostgreSQL and Redis, checked against the rows."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import asyncpg
import pytest

from storage import postgres
from storage import redis as redis_storage
from storage.errors import NotFound
from storage.models import (
    ArchivePage,
    ArchiveQuery,
    Channel,
    Company,
    CompanyDraft,
    Conversation,
    Limit,
    NewMessage,
    NewRequest,
    OwnCopy,
    Party,
    Role,
)
from storage.postgres.tables import message_pages

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

Sql = asyncpg.Connection
AGENT = "bob@localhost"
NOW = dt.datetime.now(dt.UTC)


def customer() -> str:
    return f"c-{uuid.uuid4().hex[:10]}@localhost"


def message(
    conv: Conversation,
    body: str,
    *,
    out: bool = False,
    ts: dt.datetime | None = None,
) -> NewMessage:
    return NewMessage(
        conversation_id=conv.id,
        author=Party.COMPANY if out else Party.CUSTOMER,
        sender_jid=AGENT if out else conv.customer_jid,
        body=body,
        stanza_id=str(uuid.uuid4()),
        client_id=None,
        client_key=None,
        pending=False,
        ts=ts or dt.datetime.now(dt.UTC),
    )


async def company_with(
    pg: postgres.PostgresStores, slug: str, customers: int, retention_days: int | None = None
) -> tuple[Company, list[Conversation]]:
    company = await pg.directory.add_company(
        CompanyDraft(slug=slug, name=slug, retention_days=retention_days)
    )
    convs = await pg.conversations.open_many(
        [(company.id, customer(), None) for _ in range(customers)]
    )
    return company, convs


async def archive(pg: postgres.PostgresStores, *messages: NewMessage) -> list[str]:
    await pg.archive.append_batch(messages)
    return [m.stanza_id for m in messages]


def bodies(page: ArchivePage) -> list[str]:
    return [m.body for m in page.messages]


# -- a company's archive, filters, paging ------------------------------------


async def test_a_company_archive_spans_its_conversations_in_archive_order(
    pg: postgres.PostgresStores, slug: str
) -> None:
    company, (a, b) = await company_with(pg, slug, 2)
    _, (elsewhere,) = await company_with(pg, slug + "-x", 1)
    await archive(pg, message(a, "a0"), message(b, "b0"), message(elsewhere, "x0"))
    await archive(pg, message(a, "a1", out=True), message(b, "b1"))
    whole = ArchiveQuery(company_id=company.id, limit=3)

    first = await pg.archive.page(whole)
    assert (bodies(first), first.complete, first.count) == (["a0", "b0", "a1"], False, 4)
    rest = await pg.archive.page(dataclasses.replace(whole, after=first.messages[-1].stanza_id))
    assert (bodies(rest), rest.complete) == (["b1"], True)
    last = await pg.archive.page(dataclasses.replace(whole, before="", limit=2))
    assert (bodies(last), last.complete) == (["a1", "b1"], False)
    before = await pg.archive.page(dataclasses.replace(whole, before=last.messages[0].stanza_id))
    assert (bodies(before), before.complete) == (["a0", "b0"], True)
    one = await pg.archive.page(dataclasses.replace(whole, conversation_id=b.id))
    assert (bodies(one), one.count) == (["b0", "b1"], 2)
    # Another company's stanza-ids are not in this archive.
    other = (
        await pg.archive.page(ArchiveQuery(company_id=0, conversation_id=elsewhere.id))
    ).messages
    with pytest.raises(NotFound):
        await pg.archive.page(dataclasses.replace(whole, after=other[0].stanza_id))
    with pytest.raises(NotFound):  # nor another conversation's in a conversation's archive
        await pg.archive.page(
            dataclasses.replace(whole, conversation_id=b.id, after=first.messages[0].stanza_id)
        )


async def test_extended_filters_select_the_result_set_and_its_count(
    pg: postgres.PostgresStores, slug: str
) -> None:
    company, (conv,) = await company_with(pg, slug, 1)
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    ids = await archive(
        pg, *(message(conv, f"m{n}", ts=t0 + dt.timedelta(minutes=n)) for n in range(6))
    )
    query = ArchiveQuery(company_id=company.id, conversation_id=conv.id)

    between = await pg.archive.page(
        dataclasses.replace(query, after_id=ids[0], before_id=ids[4], limit=2)
    )
    assert (bodies(between), between.complete, between.count) == (["m1", "m2"], False, 3)
    # RSM paging inside the filtered set: before-id stays a filter.
    tail = await pg.archive.page(
        dataclasses.replace(query, after_id=ids[0], before_id=ids[4], before="", limit=2)
    )
    assert (bodies(tail), tail.complete) == (["m2", "m3"], False)
    picked = await pg.archive.page(dataclasses.replace(query, ids=(ids[5], ids[2])))
    assert (bodies(picked), picked.count, picked.complete) == (["m2", "m5"], 2, True)
    timed = await pg.archive.page(
        dataclasses.replace(
            query, start=t0 + dt.timedelta(minutes=2), end=t0 + dt.timedelta(minutes=3)
        )
    )
    assert (bodies(timed), timed.count) == (["m2", "m3"], 2)
    with pytest.raises(NotFound):
        await pg.archive.page(dataclasses.replace(query, ids=(ids[1], "no-such-id")))
    with pytest.raises(NotFound):
        await pg.archive.page(dataclasses.replace(query, before_id="no-such-id"))
    empty = await pg.archive.page(dataclasses.replace(query, limit=0))
    assert (empty.messages, empty.complete, empty.count) == ([], False, 6)


async def test_the_count_is_left_out_when_it_would_cost_more_than_the_page(
    pg: postgres.PostgresStores, slug: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    company, (conv,) = await company_with(pg, slug, 1)
    await archive(pg, *(message(conv, f"word {n}") for n in range(5)))
    query = ArchiveQuery(company_id=company.id, conversation_id=conv.id, limit=2)
    monkeypatch.setattr(message_pages, "COUNT_LIMIT", 5)
    assert (await pg.archive.page(query)).count == 5
    monkeypatch.setattr(message_pages, "COUNT_LIMIT", 4)
    capped = await pg.archive.page(query)
    assert (bodies(capped), capped.complete, capped.count) == (["word 0", "word 1"], False, None)
    # A full-text query with every match in hand counts them exactly,
    # whatever the limit.
    assert (await pg.archive.page(dataclasses.replace(query, text="word"))).count == 5


async def test_full_text_pages_are_the_same_whichever_way_they_are_read(
    pg: postgres.PostgresStores, slug: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    company, (conv, other) = await company_with(pg, slug, 2)
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    ids = await archive(
        pg,
        *(
            message(
                conv if n % 4 else other,
                f"price {n}" if n % 3 else f"stock {n}",
                ts=t0 + dt.timedelta(minutes=n),
            )
            for n in range(40)
        ),
    )
    ours = [i for n, i in enumerate(ids) if n % 4]
    in_conv = ArchiveQuery(company_id=company.id, conversation_id=conv.id, text="PRIC", limit=4)
    in_company = dataclasses.replace(in_conv, conversation_id=None)
    queries = [
        in_conv,
        dataclasses.replace(in_conv, before=""),
        dataclasses.replace(in_conv, after=ours[9]),
        dataclasses.replace(in_conv, before=ours[20]),
        dataclasses.replace(in_conv, after_id=ours[3], before_id=ours[25], limit=50),
        dataclasses.replace(in_conv, start=t0 + dt.timedelta(minutes=10), before=""),
        dataclasses.replace(in_conv, text="price 1"),
        in_company,
        dataclasses.replace(in_company, before=ids[30]),
        dataclasses.replace(in_company, text="?!"),
    ]

    async def pages(scan_limit: int, matches_limit: int) -> list[ArchivePage]:
        monkeypatch.setattr(message_pages, "SCAN_LIMIT", scan_limit)
        monkeypatch.setattr(message_pages, "MATCHES_LIMIT", matches_limit)
        return [await pg.archive.page(q) for q in queries]

    # The scope read whole; the index's matches in the whole archive; the
    # scope's index walked, as for a frequent word in a large scope.
    collected = await pages(1000, 0)
    found = await pages(0, 10**9)
    walked = await pages(0, 0)

    assert [(bodies(p), p.complete) for p in found] == [(bodies(p), p.complete) for p in collected]
    assert [(bodies(p), p.complete) for p in walked] == [(bodies(p), p.complete) for p in collected]
    counts = [20, 20, 20, 20, 13, 16, 7, 26, 26, 0]
    assert [p.count for p in collected] == [p.count for p in found] == counts
    assert [p.count for p in walked] == [None] * 9 + [0]  # no words: nothing to count
    assert bodies(collected[0]) == ["price 1", "price 2", "price 5", "price 7"]
    assert bodies(collected[1]) == ["price 34", "price 35", "price 37", "price 38"]
    assert bodies(collected[6]) == ["price 1", "price 10", "price 11", "price 13"]


async def test_a_period_is_paged_in_archive_order_whatever_the_clocks_said(
    pg: postgres.PostgresStores, sql: Sql, slug: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two component processes archive in the order of their commits, with
    # timestamps from their own clocks: the archive's order is the ids'.
    company, (conv,) = await company_with(pg, slug, 1)
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    minutes = [5, 1, 4, 2, 3, 9, 0]
    await archive(pg, *(message(conv, f"m{n}", ts=t0 + dt.timedelta(minutes=n)) for n in minutes))
    period = ArchiveQuery(
        company_id=company.id,
        conversation_id=conv.id,
        start=t0 + dt.timedelta(minutes=1),
        end=t0 + dt.timedelta(minutes=5),
        limit=3,
    )
    # Read from the period's index (up to PERIOD_LIMIT), or walking the scope's.
    for period_limit in (1000, 0):
        monkeypatch.setattr(message_pages, "PERIOD_LIMIT", period_limit)
        for query in (period, dataclasses.replace(period, conversation_id=None)):
            first = await pg.archive.page(query)
            assert (bodies(first), first.complete, first.count) == (["m5", "m1", "m4"], False, 5)
            last = await pg.archive.page(dataclasses.replace(query, before=""))
            assert (bodies(last), last.complete) == (["m4", "m2", "m3"], False)
            middle = await pg.archive.page(
                dataclasses.replace(query, after=first.messages[0].stanza_id)
            )
            assert bodies(middle) == ["m1", "m4", "m2"]
    # Each scope has an index by time, and the page's own settings stay its own.
    indexes = await sql.fetch(
        "SELECT indexdef FROM pg_indexes WHERE indexname LIKE 'messages_%_ts'"
    )
    assert sorted(row["indexdef"].split(" USING ")[1] for row in indexes) == [
        "btree (company_id, ts) INCLUDE (id)",
        "btree (conversation_id, ts) INCLUDE (id)",
    ]
    await message_pages.page(sql, period)  # type: ignore[arg-type]
    assert await sql.fetchval("SHOW plan_cache_mode") == "auto"


async def test_full_text_matches_every_word_as_a_prefix_in_any_language(
    pg: postgres.PostgresStores, sql: Sql, slug: str
) -> None:
    company, (conv, other) = await company_with(pg, slug, 2)
    await archive(
        pg,
        message(conv, "Do you DELIVER to Akademgorodok?"),
        message(conv, "Delivery within 40 minutes.", out=True),
        message(conv, "Доставка в Академгородок, пожалуйста"),
        message(conv, "it's 205/55 R16, o'brien said \\o/"),
        message(other, "We deliver everywhere", out=True),
    )

    async def search(text: str, conversation: Conversation | None = conv) -> list[str]:
        query = ArchiveQuery(
            company_id=company.id,
            conversation_id=conversation.id if conversation else None,
            text=text,
        )
        page = await pg.archive.page(query)
        assert page.count == len(page.messages)
        return bodies(page)

    assert await search("deliver") == [
        "Do you DELIVER to Akademgorodok?",
        "Delivery within 40 minutes.",
    ]
    assert await search("deliver akadem") == ["Do you DELIVER to Akademgorodok?"]
    assert await search("ДОСТАВКА академ") == ["Доставка в Академгородок, пожалуйста"]
    assert await search("205/55 o'brien") == ["it's 205/55 R16, o'brien said \\o/"]
    assert await search("\\o/") == ["it's 205/55 R16, o'brien said \\o/"]
    assert await search("deliver", None) == [
        "Do you DELIVER to Akademgorodok?",
        "Delivery within 40 minutes.",
        "We deliver everywhere",
    ]
    assert await search("pizza") == []
    assert await search("?!") == []  # no words: nothing matches
    assert len(await search("   ")) == 4  # blank: no filter
    # The GIN index serves the search.
    plan = await sql.fetchval(
        "EXPLAIN (FORMAT TEXT) SELECT id FROM messages"
        " WHERE to_tsvector('simple', body) @@ to_tsquery('simple', 'deliver:*')"
    )
    indexes = await sql.fetchval(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'messages_body_search'"
    )
    assert "gin" in indexes and "to_tsvector('simple'::regconfig, body)" in indexes, plan


async def test_ends_and_messages_of_read_the_whole_scope(
    pg: postgres.PostgresStores, slug: str
) -> None:
    company, (a, b) = await company_with(pg, slug, 2)
    assert await pg.archive.ends(ArchiveQuery(company_id=company.id)) is None
    ids = await archive(pg, message(a, "a0"), message(b, "b0"), message(a, "a1"))
    ends = await pg.archive.ends(ArchiveQuery(company_id=company.id))
    assert ends is not None and (ends[0].stanza_id, ends[1].stanza_id) == (ids[0], ids[2])
    ends = await pg.archive.ends(ArchiveQuery(company_id=company.id, conversation_id=b.id))
    assert ends is not None and ends[0].stanza_id == ends[1].stanza_id == ids[1]

    first = await pg.archive.messages_of(a.id, after=0, limit=1)
    assert [m.body for m in first] == ["a0"]
    rest = await pg.archive.messages_of(a.id, after=first[0].id, limit=10)
    assert [m.body for m in rest] == ["a1"]


# -- retention ----------------------------------------------------------------


async def test_retention_deletes_only_what_expired_in_batches(
    pg: postgres.PostgresStores, sql: Sql, slug: str
) -> None:
    company, (a, b) = await company_with(pg, slug, 2, retention_days=30)
    keeper, (kept_conv,) = await company_with(pg, slug + "-k", 1)
    assert company.retention_days == 30
    assert (await pg.directory.get_company(slug)) == company
    old = NOW - dt.timedelta(days=31)
    await archive(pg, *(message(c, "old", ts=old) for c in (a, b, a, b, a)))
    await archive(pg, message(kept_conv, "old", ts=old))
    recent = await archive(pg, message(a, "recent", ts=NOW - dt.timedelta(days=29)))
    # An expired message archived after a newer one waits for the next run.
    late = await archive(pg, message(b, "late", ts=old))
    [target] = await sql.fetch(
        "SELECT id FROM messages WHERE conversation_id = $1 ORDER BY id LIMIT 1", a.id
    )

    pruned = await pg.archive.prune_expired(NOW, batch_size=2)

    mine = [p for p in pruned if p.company_slug == slug]
    assert [(p.retention_days, p.messages) for p in mine] == [(30, 5)]
    assert all(p.company_slug != keeper.slug for p in pruned)  # no retention: untouched
    left = await sql.fetch(
        "SELECT stanza_id FROM messages WHERE company_id = $1 ORDER BY id", company.id
    )
    assert [r["stanza_id"] for r in left] == [*recent, *late]
    assert await sql.fetchval("SELECT count(*) FROM messages WHERE id = $1", target["id"]) == 0
    assert (
        await sql.fetchval("SELECT count(*) FROM messages WHERE conversation_id = $1", kept_conv.id)
        == 1
    )
    # Once the boundary moved past it, the late one goes too.
    later = NOW + dt.timedelta(days=2)
    again = [p for p in await pg.archive.prune_expired(later, 1000) if p.company_slug == slug]
    assert again[0].messages == 2
    assert (
        await sql.fetchval("SELECT count(*) FROM messages WHERE company_id = $1", company.id) == 0
    )


async def test_retention_must_be_positive(pg: postgres.PostgresStores, slug: str) -> None:
    with pytest.raises(ValueError):
        await pg.directory.add_company(CompanyDraft(slug=slug, name=slug, retention_days=0))
    assert await pg.directory.get_company(slug) is None  # one transaction


# -- forgetting a customer ----------------------------------------------------


async def test_forget_deletes_everything_about_one_customer_and_nothing_else(
    pg: postgres.PostgresStores, sql: Sql, slug: str
) -> None:
    one = await pg.directory.add_company(CompanyDraft(slug=slug, name=slug))
    two = await pg.directory.add_company(CompanyDraft(slug=slug + "-2", name=slug))
    gone, stays = customer(), customer()
    await pg.directory.add_agent(one.slug, gone, Role.AGENT)  # also an agent of `one`
    c1, c2, c3 = await pg.conversations.open_many(
        [(two.id, gone, "Gone"), (one.id, stays, None), (two.id, stays, None)]
    )
    c4 = (await pg.conversations.open_many([(one.id, gone, None)]))[0]
    await archive(pg, message(c1, "mine"), message(c1, "reply", out=True), message(c4, "hi"))
    await archive(
        pg,
        message(c2, "theirs"),
        dataclasses.replace(message(c2, "as agent", out=True), sender_jid=gone),
    )
    created = NOW
    await pg.requests.create(
        NewRequest(
            public_id=f"r{uuid.uuid4().hex[:20]}",
            customer_jid=gone,
            customer_nick=None,
            subject="tyres",
            body="how much?",
            form=None,
            dedup_key=uuid.uuid4().hex,
            created_at=created,
            expires_at=created + dt.timedelta(days=1),
            company_ids=(one.id, two.id),
            stanza_ids=(str(uuid.uuid4()), str(uuid.uuid4())),
            message_body="Request: tyres",
            message_payload='<request xmlns="urn:orgchat:request:0"/>',
        ),
        60.0,
    )
    await pg.notify.schedule([(c1.id, Party.CUSTOMER, Channel.EMAIL, NOW)], 0)
    await pg.notify.schedule([(c2.id, Party.CUSTOMER, Channel.EMAIL, NOW)], 0)
    await pg.contacts.request_email(gone, "gone@example.org", "hash")
    await pg.contacts.add_push(gone, f"https://push.example/{uuid.uuid4()}", "key", "auth")
    await pg.contacts.request_email(stays, "stays@example.org", "hash")
    await sql.execute(
        "INSERT INTO roster_jobs (op, company_slug, company_name, agent_jid)"
        " VALUES ('add', $1, 'x', $3), ('add', $2, 'x', $3)",
        two.slug,
        one.slug,
        gone,
    )
    jobs_of_customer = await sql.fetchval(
        "SELECT count(*) FROM roster_jobs WHERE agent_jid = $1 AND company_slug = $2",
        gone,
        two.slug,
    )
    before_stays = await sql.fetchval(
        "SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id"
        " WHERE c.customer_jid = $1",
        stays,
    )

    forgotten = await pg.customers.forget(gone)

    assert forgotten.conversations == 2
    assert forgotten.messages == 5  # three written, and the request in both conversations
    assert forgotten.requests == 1
    assert forgotten.notify_jobs == 1
    assert (forgotten.contacts, forgotten.push_subscriptions) == (1, 1)
    # The roster job of `one`, where they are an agent, stays.
    assert forgotten.roster_jobs == jobs_of_customer >= 1
    for table, column in (
        ("conversations", "customer_jid"),
        ("requests", "customer_jid"),
        ("contacts", "address"),
        ("push_subscriptions", "address"),
    ):
        assert await sql.fetchval(f"SELECT count(*) FROM {table} WHERE {column} = $1", gone) == 0
    assert (
        await sql.fetchval(
            "SELECT count(*) FROM messages WHERE conversation_id = ANY($1::bigint[])",
            [c1.id, c4.id],
        )
        == 0
    )
    assert (
        await sql.fetchval(
            "SELECT count(*) FROM roster_jobs WHERE agent_jid = $1 AND company_slug = $2",
            gone,
            one.slug,
        )
        >= 1
    )
    # The other customer and the agent role are untouched.
    assert (
        await sql.fetchval(
            "SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id"
            " WHERE c.customer_jid = $1",
            stays,
        )
        == before_stays
    )
    assert [a.jid for a in await pg.directory.list_agents(one.slug)] == [gone]
    assert (await pg.contacts.get(stays)).pending_email == "stays@example.org"
    assert await pg.conversations.by_ids([c2.id, c3.id]) != []
    again = await pg.customers.forget(gone)
    assert again.conversations == again.messages == again.requests == 0


async def test_forget_drops_the_rate_limit_counters_in_redis(
    rd: redis_storage.RedisStores, redis_client: object, redis_prefix: str
) -> None:
    jid, other = customer(), customer()
    await rd.limits.hit(Limit.CUSTOMER_MESSAGES, [jid, other], 10, 60)
    await rd.limits.hit(Limit.CUSTOMER_REQUESTS, [jid], 10, 60)
    await rd.limits.hit(Limit.CUSTOMER_MESSAGES, [jid], 10, 3600)
    assert await rd.limits.forget(jid) == 3
    assert await rd.limits.forget(jid) == 0
    # Glob characters in a JID are matched literally.
    assert await rd.limits.forget("*@localhost") == 0
    assert await rd.limits.hit(Limit.CUSTOMER_MESSAGES, [other], 1, 60) == [False]  # still counted


async def test_forgetting_a_customer_empties_their_own_archive_and_the_agents_copies(
    pg: postgres.PostgresStores, sql: Sql, slug: str
) -> None:
    """Users' own archives (ejabberd's ``archive`` table) follow the forget:
    the customer's whole own archive, and the copies of their conversations
    in the archives of the company's agents; nobody else's."""
    _, [gone_conv, other_conv] = await company_with(pg, slug, 2)
    agent = f"a-{uuid.uuid4().hex[:10]}@localhost"
    await pg.directory.add_agent(slug, agent, Role.AGENT)
    company_address = f"{slug}@biz.localhost"

    def copied(conv: Conversation, body: str) -> NewMessage:
        conv_address = f"{slug}+{conv.token}@biz.localhost"
        copies = (
            OwnCopy(conv.customer_jid, company_address, True, "m1", body),
            OwnCopy(agent, conv_address, False, "m1", body),
        )
        return dataclasses.replace(message(conv, body), copies=copies)

    await archive(pg, copied(gone_conv, "forget me"), copied(other_conv, "keep me"))

    async def count(owner: str) -> int:
        user, _, host = owner.partition("@")
        return int(
            await sql.fetchval(
                "SELECT count(*) FROM archive WHERE username = $1 AND server_host = $2", user, host
            )
        )

    assert (await count(gone_conv.customer_jid), await count(agent)) == (1, 2)

    forgotten = await pg.customers.forget(gone_conv.customer_jid)

    assert forgotten.own_archives == 2
    assert await count(gone_conv.customer_jid) == 0
    assert await count(other_conv.customer_jid) == 1
    rows = await sql.fetch("SELECT txt FROM archive WHERE username = $1", agent.partition("@")[0])
    assert [row["txt"] for row in rows] == ["keep me"]
