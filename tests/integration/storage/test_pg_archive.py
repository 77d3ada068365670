"""ArchiveStore on PostgreSQL: batched append with dedup, pending claims, deliveries, pages."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
import uuid
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from storage import postgres
from storage.errors import NotFound
from storage.models import (
    ArchivedBatch,
    ArchivedMessage,
    ArchivePage,
    ArchiveQuery,
    ArchiveResult,
    CompanyDraft,
    Conversation,
    NewMessage,
    OwnCopy,
    Party,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

Sql = asyncpg.Connection  # the plain connection of the `sql` fixture

CUSTOMER = "carol@localhost"
AGENT = "bob@localhost"


def message(
    conversation: Conversation,
    body: str = "hello",
    *,
    key: str | None = None,
    sender: str = CUSTOMER,
    author: Party = Party.CUSTOMER,
    pending: bool = False,
) -> NewMessage:
    return NewMessage(
        conversation_id=conversation.id,
        author=author,
        sender_jid=sender,
        body=body,
        stanza_id=str(uuid.uuid4()),
        client_id=key,
        client_key=key,
        pending=pending,
        ts=dt.datetime.now(dt.UTC),
    )


async def claim(
    pg: postgres.PostgresStores, company_ids: list[int], limit: int
) -> list[ArchivedMessage]:
    """The messages of claim_pending's delivery (none: an empty list)."""
    delivery = await pg.archive.claim_pending(company_ids, limit)
    return delivery.messages if delivery else []


async def new_conversation(pg: postgres.PostgresStores, slug: str) -> Conversation:
    company = await pg.directory.add_company(CompanyDraft(slug=slug, name=slug))
    [conversation] = await pg.conversations.open_many([(company.id, CUSTOMER, None)])
    return conversation


@pytest_asyncio.fixture
async def conv(pg: postgres.PostgresStores, slug: str) -> Conversation:
    return await new_conversation(pg, slug)


async def test_append_batch_archives_in_order(
    pg: postgres.PostgresStores, sql: Sql, conv: Conversation
) -> None:
    batch = [message(conv, f"m{n}", key=f"k{n}") for n in range(3)]
    batch.append(message(conv, "reply", sender=AGENT, author=Party.COMPANY))

    results = (await pg.archive.append_batch(batch)).results

    assert results == [ArchiveResult(stanza_id=m.stanza_id, duplicate=False) for m in batch]
    rows = await sql.fetch(
        "SELECT stanza_id, body, direction, client_key FROM messages"
        " WHERE conversation_id = $1 ORDER BY id",
        conv.id,
    )
    assert [(r["stanza_id"], r["body"]) for r in rows] == [(m.stanza_id, m.body) for m in batch]
    assert rows[3]["direction"] == "out" and rows[3]["client_key"] is None


async def test_retransmission_across_batches(
    pg: postgres.PostgresStores, conv: Conversation
) -> None:
    first = message(conv, "hi", key="origin-1")
    await pg.archive.append_batch([first])

    again = message(conv, "hi", key="origin-1")
    other_sender = message(conv, "hi", key="origin-1", sender=AGENT, author=Party.COMPANY)
    no_key = message(conv, "hi")
    results = (await pg.archive.append_batch([again, other_sender, no_key])).results

    assert results == [
        ArchiveResult(stanza_id=first.stanza_id, duplicate=True),
        ArchiveResult(stanza_id=other_sender.stanza_id, duplicate=False),
        ArchiveResult(stanza_id=no_key.stanza_id, duplicate=False),
    ]
    # Without a client key nothing is deduplicated.
    [repeat] = (await pg.archive.append_batch([message(conv, "hi")])).results
    assert not repeat.duplicate


async def test_retransmission_within_one_batch(
    pg: postgres.PostgresStores, sql: Sql, conv: Conversation
) -> None:
    a = message(conv, "a", key="x")
    b = message(conv, "b")
    a_again = message(conv, "a", key="x")
    a_third = message(conv, "a", key="x")

    results = (await pg.archive.append_batch([a, b, a_again, a_third])).results

    assert results == [
        ArchiveResult(stanza_id=a.stanza_id, duplicate=False),
        ArchiveResult(stanza_id=b.stanza_id, duplicate=False),
        ArchiveResult(stanza_id=a.stanza_id, duplicate=True),
        ArchiveResult(stanza_id=a.stanza_id, duplicate=True),
    ]
    assert (
        await sql.fetchval("SELECT count(*) FROM messages WHERE conversation_id = $1", conv.id) == 2
    )


async def test_a_retried_batch_is_not_archived_twice(
    pg: postgres.PostgresStores, sql: Sql, conv: Conversation
) -> None:
    """The commit went through but its reply was lost; the caller sends the batch again."""
    batch = [message(conv, "keyed", key="k"), message(conv, "unkeyed")]
    await pg.archive.append_batch(batch)

    results = (await pg.archive.append_batch(batch)).results

    assert results == [ArchiveResult(stanza_id=m.stanza_id, duplicate=True) for m in batch]
    assert (
        await sql.fetchval("SELECT count(*) FROM messages WHERE conversation_id = $1", conv.id) == 2
    )


async def test_a_large_batch(
    pg: postgres.PostgresStores, sql: Sql, conv: Conversation, slug: str
) -> None:
    other = await new_conversation(pg, f"{slug}-2")
    earlier = message(conv, "earlier", key="dup-1")
    await pg.archive.append_batch([earlier])
    # Odd n go to `conv`, even n to `other`. Keys repeat from n = 1900 on, in
    # the same conversation (same parity): those are duplicates within the
    # batch; n = 1 and n = 1901 repeat `earlier`, archived by a previous batch.
    batch = [message(conv if n % 2 else other, f"m{n}", key=f"dup-{n % 1900}") for n in range(2000)]

    started = time.perf_counter()
    results = (await pg.archive.append_batch(batch)).results
    elapsed = time.perf_counter() - started

    assert len(results) == 2000
    assert {n for n, r in enumerate(results) if r.duplicate} == {1, *range(1900, 2000)}
    expected = [m.stanza_id for m in batch[:1900]]
    expected[1] = earlier.stanza_id
    expected += expected[:100]
    assert [r.stanza_id for r in results] == expected
    assert (
        await sql.fetchval(
            "SELECT count(*) FROM messages WHERE conversation_id = ANY($1::bigint[])",
            [conv.id, other.id],
        )
        == 1 + 1899
    )
    assert elapsed < 5, f"2,000 rows took {elapsed:.2f} s"


async def test_unknown_conversation_is_not_found(pg: postgres.PostgresStores) -> None:
    ghost = Conversation(id=-1, company_id=-1, customer_jid=CUSTOMER, token="x", customer_nick=None)
    with pytest.raises(NotFound):
        await pg.archive.append_batch([message(ghost)])


async def test_append_nothing(pg: postgres.PostgresStores) -> None:
    assert await pg.archive.append_batch([]) == ArchivedBatch([], None)


# -- pending ------------------------------------------------------------------


async def test_claim_pending_takes_oldest_first_once(
    pg: postgres.PostgresStores, conv: Conversation, slug: str
) -> None:
    other = await new_conversation(pg, f"{slug}-2")
    mine = [message(conv, f"p{n}", pending=True) for n in range(3)]
    theirs = message(other, "other company", pending=True)
    delivered = message(conv, "delivered live")
    await pg.archive.append_batch([mine[0], theirs, mine[1], delivered, mine[2]])

    first = await claim(pg, [conv.company_id], 2)
    second = await claim(pg, [conv.company_id], 10)

    assert [m.stanza_id for m in first] == [mine[0].stanza_id, mine[1].stanza_id]
    assert [m.stanza_id for m in second] == [mine[2].stanza_id]
    assert await claim(pg, [conv.company_id], 10) == []
    assert isinstance(first[0], ArchivedMessage)
    assert (first[0].body, first[0].author, first[0].sender_jid) == (
        "p0",
        Party.CUSTOMER,
        CUSTOMER,
    )
    assert [m.body for m in await claim(pg, [other.company_id], 10)] == ["other company"]
    assert await claim(pg, [], 10) == []


async def test_requeue_makes_messages_pending_again(
    pg: postgres.PostgresStores, conv: Conversation
) -> None:
    waiting = message(conv, "waiting", pending=True)
    live = message(conv, "sent live, stream died")
    reply = message(conv, "agent reply", sender=AGENT, author=Party.COMPANY)
    await pg.archive.append_batch([waiting, live, reply])
    [claimed] = await claim(pg, [conv.company_id], 10)
    assert claimed.stanza_id == waiting.stanza_id

    await pg.archive.requeue([waiting.stanza_id, live.stanza_id, reply.stanza_id])
    await pg.archive.requeue([])

    again = await claim(pg, [conv.company_id], 10)
    assert [m.stanza_id for m in again] == [waiting.stanza_id, live.stanza_id]  # never OUT


async def test_concurrent_claimers_never_share_a_message(
    pg: postgres.PostgresStores, pg_dsn: str, conv: Conversation
) -> None:
    batch = [message(conv, f"p{n}", pending=True) for n in range(300)]
    await pg.archive.append_batch(batch)
    # A second process: its own pool.
    other = await postgres.connect(pg_dsn, min_size=1, max_size=4, command_timeout=10.0)

    async def drain(stores: postgres.PostgresStores) -> list[str]:
        taken: list[str] = []
        while claimed := await claim(stores, [conv.company_id], 7):
            taken += [m.stanza_id for m in claimed]
        return taken

    try:
        results = await asyncio.gather(drain(pg), drain(other), drain(pg), drain(other))
    finally:
        await other.close()

    every = [stanza_id for taken in results for stanza_id in taken]
    assert len(every) == len(set(every)) == 300
    assert set(every) == {m.stanza_id for m in batch}
    assert all(taken for taken in results)  # each claimer got some work


# -- pages --------------------------------------------------------------------


async def newest(pg: postgres.PostgresStores, conversation_id: int, limit: int) -> ArchivePage:
    return await pg.archive.page(
        ArchiveQuery(company_id=0, conversation_id=conversation_id, before="", limit=limit)
    )


async def test_the_last_page_is_the_newest_oldest_first(
    pg: postgres.PostgresStores, conv: Conversation
) -> None:
    batch = [message(conv, f"m{n}") for n in range(5)]
    await pg.archive.append_batch(batch[:2])
    await pg.archive.append_batch(batch[2:])

    history = (await newest(pg, conv.id, 3)).messages

    assert [m.body for m in history] == ["m2", "m3", "m4"]
    assert [m.stanza_id for m in history] == [m.stanza_id for m in batch[2:]]
    assert history[0].id < history[1].id < history[2].id
    assert history[0].ts == batch[2].ts
    assert [m.body for m in (await newest(pg, conv.id, 100)).messages] == [m.body for m in batch]
    assert (await newest(pg, -1, 10)).messages == []


# -- deliveries -----------------------------------------------------------------


async def test_a_batch_being_delivered_is_recorded_until_confirmed(
    pg: postgres.PostgresStores, sql: Sql, conv: Conversation
) -> None:
    live = [message(conv, "live"), message(conv, "reply", sender=AGENT, author=Party.COMPANY)]
    waiting = message(conv, "waiting", pending=True)
    batch = await pg.archive.append_batch([*live, waiting])
    assert batch.delivery_id is not None
    ids = await sql.fetchval("SELECT message_ids FROM deliveries WHERE id = $1", batch.delivery_id)
    bodies = await sql.fetch("SELECT body FROM messages WHERE id = ANY($1) ORDER BY id", ids)
    assert [r["body"] for r in bodies] == ["live", "reply"]  # not the pending one

    # Nothing is stale yet; once confirmed, nothing is left to take over.
    assert await pg.archive.claim_unconfirmed(60, 10) == []
    await pg.archive.confirm([batch.delivery_id])
    assert (
        await sql.fetchval("SELECT count(*) FROM deliveries WHERE id = $1", batch.delivery_id) == 0
    )
    # Only pending messages, or only duplicates: no delivery record.
    assert (await pg.archive.append_batch([message(conv, "p", pending=True)])).delivery_id is None
    assert (await pg.archive.append_batch([live[0]])).delivery_id is None


async def test_unconfirmed_deliveries_are_taken_over_once_stale(
    pg: postgres.PostgresStores, sql: Sql, conv: Conversation
) -> None:
    batch = await pg.archive.append_batch([message(conv, "a"), message(conv, "b")])
    await sql.execute(
        "UPDATE deliveries SET since = now() - interval '1 minute' WHERE id = $1",
        batch.delivery_id,
    )
    [taken] = [d for d in await pg.archive.claim_unconfirmed(30, 10) if d.id == batch.delivery_id]
    assert [m.body for m in taken.messages] == ["a", "b"]
    # Leased again: another sweeper does not take it meanwhile.
    assert batch.delivery_id not in [d.id for d in await pg.archive.claim_unconfirmed(30, 10)]
    await pg.archive.confirm([taken.id])
    await pg.archive.confirm([])


async def test_claimed_pending_messages_are_a_delivery_too(
    pg: postgres.PostgresStores, sql: Sql, conv: Conversation
) -> None:
    await pg.archive.append_batch([message(conv, "wait for me", pending=True)])
    delivery = await pg.archive.claim_pending([conv.company_id], 10)
    assert delivery is not None and [m.body for m in delivery.messages] == ["wait for me"]
    assert await sql.fetchval("SELECT count(*) FROM deliveries WHERE id = $1", delivery.id) == 1
    await pg.archive.confirm([delivery.id])
    assert await pg.archive.claim_pending([conv.company_id], 10) is None


async def test_a_delivery_whose_messages_were_deleted_comes_back_empty(
    pg: postgres.PostgresStores, sql: Sql, slug: str
) -> None:
    conv = await new_conversation(pg, f"{slug}-gone")
    batch = await pg.archive.append_batch([message(conv, "x")])
    await pg.directory.remove_company(f"{slug}-gone")
    await sql.execute(
        "UPDATE deliveries SET since = now() - interval '1 minute' WHERE id = $1",
        batch.delivery_id,
    )
    taken = [d for d in await pg.archive.claim_unconfirmed(30, 10) if d.id == batch.delivery_id]
    assert [d.messages for d in taken] == [[]]
    assert batch.delivery_id is not None
    await pg.archive.confirm([batch.delivery_id])


async def test_the_next_batch_confirms_earlier_deliveries(
    pg: postgres.PostgresStores, sql: Sql, conv: Conversation
) -> None:
    first = await pg.archive.append_batch([message(conv, "one")])
    second = await pg.archive.append_batch([message(conv, "two")], [first.delivery_id or 0])
    remaining = await sql.fetchval(
        "SELECT array_agg(id ORDER BY id) FROM deliveries WHERE id = ANY($1)",
        [first.delivery_id, second.delivery_id],
    )
    assert remaining == [second.delivery_id]
    # A batch with nothing to archive still confirms.
    await pg.archive.append_batch([], [second.delivery_id or 0])
    assert (
        await sql.fetchval("SELECT count(*) FROM deliveries WHERE id = $1", second.delivery_id) == 0
    )


async def test_page_walks_the_archive_both_ways(
    pg: postgres.PostgresStores, conv: Conversation
) -> None:
    batch = [message(conv, f"m{n}") for n in range(5)]
    await pg.archive.append_batch(batch)
    ids = [m.stanza_id for m in batch]

    async def page(**kw: Any) -> ArchivePage:
        scope = {"company_id": conv.company_id, "conversation_id": conv.id, "limit": 2}
        return await pg.archive.page(ArchiveQuery(**(scope | kw)))

    first = await page()
    assert ([m.body for m in first.messages], first.complete, first.count) == (
        ["m0", "m1"],
        False,
        5,
    )
    nxt = await page(after=ids[1])
    assert [m.body for m in nxt.messages] == ["m2", "m3"]
    last = await page(before="")
    assert ([m.body for m in last.messages], last.complete) == (["m3", "m4"], False)
    earlier = await page(before=ids[1], limit=10)
    assert ([m.body for m in earlier.messages], earlier.complete) == (["m0"], True)
    later = await page(start=batch[0].ts + dt.timedelta(seconds=1))
    assert (later.messages, later.complete, later.count) == ([], True, 0)
    with pytest.raises(NotFound):
        await page(after="not-an-id")


async def test_thread_and_payload_travel_with_a_message(
    pg: postgres.PostgresStores, sql: Sql, conv: Conversation
) -> None:
    payload = '<request xmlns="urn:orgchat:request:0" id="rabc"/>'
    threaded = dataclasses.replace(message(conv, "live"), thread="rabc", payload=payload)
    waiting = dataclasses.replace(message(conv, "wait", pending=True), thread="rabc")
    plain = message(conv, "plain")
    batch = await pg.archive.append_batch([threaded, waiting, plain])

    history = (await newest(pg, conv.id, 10)).messages
    assert [(m.body, m.thread, m.payload) for m in history] == [
        ("live", "rabc", payload),
        ("wait", "rabc", None),
        ("plain", None, None),
    ]
    delivery = await pg.archive.claim_pending([conv.company_id], 10)
    assert delivery is not None
    assert [(m.thread, m.payload) for m in delivery.messages] == [("rabc", None)]
    await sql.execute(
        "UPDATE deliveries SET since = now() - interval '1 minute' WHERE id = $1",
        batch.delivery_id,
    )
    [taken] = [d for d in await pg.archive.claim_unconfirmed(30, 10) if d.id == batch.delivery_id]
    assert [(m.body, m.thread, m.payload) for m in taken.messages] == [
        ("live", "rabc", payload),
        ("plain", None, None),
    ]
    await pg.archive.confirm([taken.id, delivery.id])


async def test_copies_in_users_own_archives_are_written_with_their_message(
    pg: postgres.PostgresStores, sql: Sql, conv: Conversation
) -> None:
    """Each new message's copies land in ejabberd's ``archive`` table, as
    ejabberd would store them; a duplicate's copies do not."""
    owner = f"u{uuid.uuid4().hex[:10]}@localhost"
    company = "shop@biz.localhost"

    now = dt.datetime.now(dt.UTC)  # a batch's messages share its arrival time

    def copied(body: str, key: str, outgoing: bool) -> NewMessage:
        copy = OwnCopy(owner, company, outgoing, message_id=key, body=body)
        return dataclasses.replace(message(conv, body, key=key), copies=(copy,), ts=now)

    first, second = copied('1 < 2 & "ok"', "k1", True), copied("answer", "k2", False)
    await pg.archive.append_batch([first, second])
    await pg.archive.append_batch([copied('1 < 2 & "ok"', "k1", True)])  # a retransmission

    rows = await sql.fetch(
        "SELECT * FROM archive WHERE username = $1 ORDER BY timestamp", owner.partition("@")[0]
    )
    assert [(r["server_host"], r["peer"], r["bare_peer"], r["txt"]) for r in rows] == [
        ("localhost", company, company, '1 < 2 & "ok"'),
        ("localhost", company, company, "answer"),
    ]
    assert rows[0]["xml"] == (
        f'<message xmlns="jabber:client" type="chat" id="k1" from="{owner}" to="{company}">'
        '<body>1 &lt; 2 &amp; "ok"</body></message>'
    )
    assert f'from="{company}" to="{owner}"' in rows[1]["xml"]
    # Microseconds since the epoch (ejabberd's archive id), one apart in a batch.
    micros = (now - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
    assert [r["timestamp"] for r in rows] == [micros, micros + 1]
    assert {r["kind"] for r in rows} == {"chat"}


async def test_every_value_reaches_the_archive_as_sent(
    pg: postgres.PostgresStores, sql: Sql, conv: Conversation
) -> None:
    """Text with control characters (but the two that pack columns: see
    test_pg_packed.py), quotes, backslashes and characters
    outside the Basic Multilingual Plane, NULLs, booleans and the exact
    microsecond arrive as they were sent, in the messages and in the own
    copies."""
    bodies = [
        'back\\slash "quoted" /slash/',
        "line\nbreak\ttab\r\x01",
        "Привет, 你好, 🙂, \u2028\u2029, \ufeff",
        "null",
        "",
    ]
    stamp = dt.datetime(2026, 12, 6, 23, 59, 59, 999_999, tzinfo=dt.UTC)
    owner = f"u{uuid.uuid4().hex[:10]}@localhost"
    batch = [
        dataclasses.replace(
            message(conv, body, key=f"k{n}" if n % 2 else None),
            ts=stamp,
            pending=bool(n % 2),
            thread="t-1" if n == 2 else None,
            payload='{"x": "\\u00e9"}' if n == 2 else None,
            copies=(OwnCopy(owner, "shop@biz.localhost", False, f"m{n}", body),),
        )
        for n, body in enumerate(bodies)
    ]

    await pg.archive.append_batch(batch)

    rows = await sql.fetch(
        "SELECT body, client_id, client_key, pending, ts, thread, payload FROM messages"
        " WHERE conversation_id = $1 ORDER BY id",
        conv.id,
    )
    assert [tuple(r) for r in rows] == [
        (m.body, m.client_id, m.client_key, m.pending, stamp, m.thread, m.payload) for m in batch
    ]
    copies = await sql.fetch(
        "SELECT txt FROM archive WHERE username = $1 ORDER BY timestamp", owner.partition("@")[0]
    )
    assert [r["txt"] for r in copies] == bodies


async def test_a_value_with_a_column_separator_is_refused_not_split(
    pg: postgres.PostgresStores, sql: Sql, conv: Conversation
) -> None:
    """A body holding U+001F (which XML cannot carry) would split its column
    in two: the batch is refused whole instead, before anything is written
    (the router then archives its messages one by one)."""
    batch = [message(conv, "fine"), message(conv, "split\x1fhere")]
    with pytest.raises(ValueError, match="control character"):
        await pg.archive.append_batch(batch)
    assert (
        await sql.fetchval("SELECT count(*) FROM messages WHERE conversation_id = $1", conv.id) == 0
    )
