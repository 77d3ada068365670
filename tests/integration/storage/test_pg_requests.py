"""RequestStore on PostgreSQL: fan-out, duplicates, lists, statuses, closing, expiry."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from storage import postgres
from storage.errors import Conflict, NotFound
from storage.models import (
    BatchExtras,
    CompanyDraft,
    CreatedRequest,
    NewMessage,
    NewRequest,
    Notice,
    OwnCopy,
    Party,
    Request,
    RequestReply,
    RequestState,
    StatusChange,
    TargetStatus,
    TargetUpdate,
)
from storage.postgres.archive import PgArchiveStore
from storage.postgres.pool import Database

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

Sql = asyncpg.Connection  # the plain connection of the `sql` fixture

PAYLOAD = '<request xmlns="urn:orgchat:request:0"/>'
DAY = dt.timedelta(days=1)


def public_id() -> str:
    return "r" + "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(20))


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_request(
    customer: str,
    company_ids: list[int],
    *,
    dedup_key: str | None = None,
    created_at: dt.datetime | None = None,
    expires_at: dt.datetime | None = None,
    nick: str | None = None,
    subject: str = "Winter tyres",
) -> NewRequest:
    created = created_at or now()
    pid = public_id()
    return NewRequest(
        public_id=pid,
        customer_jid=customer,
        customer_nick=nick,
        subject=subject,
        body="How much for four, fitted?",
        form='<x xmlns="jabber:x:data" type="submit"/>',
        dedup_key=dedup_key or uuid.uuid4().hex,
        created_at=created,
        expires_at=expires_at or created + DAY,
        company_ids=tuple(company_ids),
        stanza_ids=tuple(str(uuid.uuid4()) for _ in company_ids),
        message_body=f"Request: {subject}",
        message_payload=PAYLOAD.replace("/>", f' id="{pid}"/>'),
    )


@pytest.fixture
def customer() -> str:
    """A customer no other test uses (lists and counts are per customer)."""
    return f"c-{uuid.uuid4().hex[:12]}@localhost"


@pytest_asyncio.fixture
async def companies(pg: postgres.PostgresStores, slug: str) -> list[int]:
    """Three new companies' ids."""
    return [
        (await pg.directory.add_company(CompanyDraft(slug=f"{slug}-{n}", name=f"Co {n}"))).id
        for n in range(3)
    ]


async def create(
    pg: postgres.PostgresStores, customer: str, company_ids: list[int], **kw: Any
) -> Request:
    created = await pg.requests.create(new_request(customer, company_ids, **kw), 60.0)
    assert not created.duplicate
    return created.request


def statuses(request: Request | None) -> list[TargetStatus]:
    assert request is not None
    return [t.status for t in request.targets]


# -- create ---------------------------------------------------------------------


async def test_create_fans_out_in_one_go(
    pg: postgres.PostgresStores, sql: Sql, customer: str, companies: list[int]
) -> None:
    # One conversation exists already (the nick is updated), two are new.
    [existing] = await pg.conversations.open_many([(companies[1], customer, "Old nick")])
    order = [companies[2], companies[0], companies[1]]
    new = new_request(customer, order, nick="Rita")

    created = await pg.requests.create(new, 60.0)

    assert isinstance(created, CreatedRequest) and not created.duplicate
    request = created.request
    assert (request.public_id, request.customer_jid, request.subject, request.body) == (
        new.public_id,
        customer,
        new.subject,
        new.body,
    )
    assert (request.form, request.state, request.closed_at, request.accepted_company_id) == (
        new.form,
        RequestState.OPEN,
        None,
        None,
    )
    assert (request.created_at, request.expires_at) == (new.created_at, new.expires_at)
    assert [t.company_id for t in request.targets] == order
    assert statuses(request) == [TargetStatus.SENT] * 3
    assert all(t.offer is None and t.reason is None for t in request.targets)

    conversations = await pg.conversations.open_many([(c, customer, None) for c in order])
    assert [t.conversation_id for t in request.targets] == [c.id for c in conversations]
    assert conversations[2].id == existing.id
    assert {c.customer_nick for c in conversations} == {"Rita"}

    delivery = created.delivery
    assert delivery is not None
    assert [m.stanza_id for m in delivery.messages] == list(new.stanza_ids)
    for message, conversation in zip(delivery.messages, conversations, strict=True):
        assert message.conversation_id == conversation.id
        assert (message.author, message.sender_jid, message.body) == (
            Party.CUSTOMER,
            customer,
            new.message_body,
        )
        assert (message.thread, message.payload, message.ts) == (
            new.public_id,
            new.message_payload,
            new.created_at,
        )
        assert message.client_id is None
    ids = [m.id for m in delivery.messages]
    assert await sql.fetchval("SELECT message_ids FROM deliveries WHERE id = $1", delivery.id) == (
        sorted(ids)
    )
    rows = await sql.fetch(
        "SELECT pending, client_key FROM messages WHERE id = ANY($1::bigint[])", ids
    )
    assert [(r["pending"], r["client_key"]) for r in rows] == [(False, None)] * 3
    targets = await sql.fetch(
        "SELECT company_id, message_id, position FROM request_targets"
        " WHERE request_id = $1 ORDER BY position",
        request.id,
    )
    assert [(r["company_id"], r["message_id"], r["position"]) for r in targets] == list(
        zip(order, ids, range(3), strict=True)
    )
    assert (
        await sql.fetchval("SELECT customer_nick FROM requests WHERE id = $1", request.id) == "Rita"
    )
    await pg.archive.confirm([delivery.id])

    assert await pg.requests.get(new.public_id) == request


async def test_create_writes_each_messages_copies_in_users_own_archives(
    pg: postgres.PostgresStores, sql: Sql, customer: str, companies: list[int]
) -> None:
    new = new_request(customer, companies[:2])
    copies = tuple(
        (OwnCopy(customer, f"co{n}@biz.localhost", True, new.stanza_ids[n], new.message_body),)
        for n in range(2)
    )
    created = await pg.requests.create(dataclasses.replace(new, copies=copies), 60.0)
    assert not created.duplicate
    rows = await sql.fetch(
        "SELECT peer, xml FROM archive WHERE username = $1 ORDER BY peer",
        customer.partition("@")[0],
    )
    assert [r["peer"] for r in rows] == ["co0@biz.localhost", "co1@biz.localhost"]
    assert all(f'id="{sid}"' in r["xml"] for r, sid in zip(rows, new.stanza_ids, strict=True))
    # The same request again (a duplicate) writes nothing more.
    again = dataclasses.replace(new, public_id=public_id(), copies=copies)
    assert (await pg.requests.create(again, 60.0)).duplicate
    count = await sql.fetchval(
        "SELECT count(*) FROM archive WHERE username = $1", customer.partition("@")[0]
    )
    assert count == 2


async def test_an_asked_company_joins_the_customers_roster_when_it_answers(
    pg: postgres.PostgresStores, sql: Sql, slug: str, customer: str, companies: list[int]
) -> None:
    # Migration 0015: asking ten shops must not make ten contacts; the company
    # the customer wrote to is one at once, an asked one once it answers.
    async def roster() -> list[str]:
        rows = await sql.fetch(
            "SELECT company_slug FROM roster_jobs WHERE agent_jid = $1 AND op = 'add'"
            " ORDER BY company_slug",
            customer,
        )
        return [row["company_slug"] for row in rows]

    await pg.conversations.open_many([(companies[0], customer, None)])
    request = await create(pg, customer, companies)
    assert await roster() == [f"{slug}-0"]

    asked = request.targets[2].conversation_id
    await pg.requests.advance([TargetUpdate(asked, TargetStatus.SEEN)])
    assert await roster() == [f"{slug}-0"]
    await pg.requests.advance([TargetUpdate(asked, TargetStatus.ANSWERED, offer="<x>1</x>")])
    assert await roster() == [f"{slug}-0", f"{slug}-2"]

    # A renamed company renames the items of those who have it, and no other.
    await sql.execute("DELETE FROM roster_jobs WHERE agent_jid = $1", customer)
    for company_id in companies:
        await sql.execute("UPDATE companies SET name = name || '!' WHERE id = $1", company_id)
    assert await roster() == [f"{slug}-0", f"{slug}-2"]


async def test_create_refusals_write_nothing(
    pg: postgres.PostgresStores, sql: Sql, customer: str, companies: list[int]
) -> None:
    with pytest.raises(NotFound):
        await pg.requests.create(new_request(customer, [companies[0], -1]), 60.0)
    taken = await create(pg, customer, [companies[0]])
    clash = dataclasses.replace(new_request(customer, [companies[1]]), public_id=taken.public_id)
    with pytest.raises(Conflict):
        await pg.requests.create(clash, 60.0)
    stanza_clash = new_request(customer, [companies[1]])
    first = await pg.requests.create(stanza_clash, 60.0)
    assert first.delivery is not None
    again = dataclasses.replace(
        new_request(customer, [companies[2]]), stanza_ids=(first.delivery.messages[0].stanza_id,)
    )
    with pytest.raises(Conflict):
        await pg.requests.create(again, 60.0)
    for bad in (
        new_request(customer, []),
        new_request(customer, [companies[0], companies[0]]),
        dataclasses.replace(new_request(customer, companies), stanza_ids=("a", "b")),
    ):
        with pytest.raises(ValueError):
            await pg.requests.create(bad, 60.0)

    assert (
        await sql.fetchval("SELECT count(*) FROM requests WHERE customer_jid = $1", customer) == 2
    )
    assert (
        await sql.fetchval(
            "SELECT count(*) FROM conversations WHERE customer_jid = $1 AND company_id = $2",
            customer,
            companies[2],
        )
        == 0
    )


async def test_duplicate_within_the_window(
    pg: postgres.PostgresStores, sql: Sql, customer: str, companies: list[int]
) -> None:
    t0 = now()
    first = await pg.requests.create(
        new_request(customer, companies, dedup_key="k", created_at=t0), 60
    )
    messages_before = await sql.fetchval(
        "SELECT count(*) FROM messages WHERE sender_jid = $1", customer
    )

    again = await pg.requests.create(
        new_request(customer, companies, dedup_key="k", created_at=t0 + dt.timedelta(seconds=30)),
        60,
    )

    assert again == CreatedRequest(first.request, duplicate=True, delivery=None)
    assert await sql.fetchval("SELECT count(*) FROM messages WHERE sender_jid = $1", customer) == (
        messages_before
    )
    # Another text, or the same text once the window has passed: a new request.
    other = await pg.requests.create(
        new_request(
            customer, companies, dedup_key="other", created_at=t0 + dt.timedelta(seconds=30)
        ),
        60,
    )
    later = await pg.requests.create(
        new_request(customer, companies, dedup_key="k", created_at=t0 + dt.timedelta(seconds=61)),
        60,
    )
    assert not other.duplicate and not later.duplicate
    assert later.request.id != first.request.id
    # Within the window of the later one now; no window: never a duplicate.
    latest = await pg.requests.create(
        new_request(customer, companies, dedup_key="k", created_at=t0 + dt.timedelta(seconds=70)),
        60,
    )
    assert latest.duplicate and latest.request.id == later.request.id
    assert not (
        await pg.requests.create(new_request(customer, companies, dedup_key="k"), 0)
    ).duplicate
    # Another customer with the same key is not a duplicate either.
    stranger = f"other-{customer}"
    assert not (
        await pg.requests.create(new_request(stranger, companies, dedup_key="k", created_at=t0), 60)
    ).duplicate


async def test_concurrent_identical_creates_make_one_request(
    pg: postgres.PostgresStores, pg_dsn: str, sql: Sql, customer: str, companies: list[int]
) -> None:
    other = await postgres.connect(pg_dsn, min_size=1, max_size=4, command_timeout=10.0)
    t0 = now()
    try:
        results = await asyncio.gather(
            *(
                (pg if n % 2 else other).requests.create(
                    new_request(customer, companies, dedup_key="same", created_at=t0), 60
                )
                for n in range(6)
            )
        )
    finally:
        await other.close()

    assert sorted(r.duplicate for r in results) == [False] + [True] * 5
    assert len({r.request.id for r in results}) == 1
    assert [r.delivery is None for r in results].count(False) == 1
    assert (
        await sql.fetchval("SELECT count(*) FROM requests WHERE customer_jid = $1", customer) == 1
    )
    assert await sql.fetchval("SELECT count(*) FROM messages WHERE sender_jid = $1", customer) == 3


async def test_get_unknown_is_none(pg: postgres.PostgresStores) -> None:
    assert await pg.requests.get(public_id()) is None


# -- list -----------------------------------------------------------------------


async def test_list_pages_newest_first(
    pg: postgres.PostgresStores, customer: str, companies: list[int]
) -> None:
    made = [await create(pg, customer, companies[: 1 + n % 3], subject=f"s{n}") for n in range(5)]
    ids = [r.public_id for r in reversed(made)]  # newest first: s4 .. s0
    await create(pg, f"other-{customer}", companies)

    async def page(**kw: Any) -> tuple[list[str], int, int]:
        args: dict[str, Any] = {"state": None, "after": None, "before": None, "limit": 2}
        found = await pg.requests.list_for(customer, **(args | kw))
        return [r.public_id for r in found.requests], found.count, found.first_index

    assert await page() == (ids[0:2], 5, 0)
    assert await page(after=ids[1]) == (ids[2:4], 5, 2)
    assert await page(after=ids[3]) == (ids[4:], 5, 4)
    assert await page(after=ids[4]) == ([], 5, 0)
    assert await page(before="") == (ids[3:5], 5, 3)
    assert await page(before=ids[3]) == (ids[1:3], 5, 1)
    assert await page(before=ids[1]) == (ids[0:1], 5, 0)
    assert await page(before=ids[0]) == ([], 5, 0)
    assert await page(limit=0) == ([], 5, 0)
    assert await page(limit=100) == (ids, 5, 0)

    # Pages carry the full requests, targets in order.
    full = await pg.requests.list_for(customer, state=None, after=None, before=None, limit=10)
    assert full.requests == [await pg.requests.get(i) for i in ids]
    assert [len(r.targets) for r in full.requests] == [2, 1, 3, 2, 1]

    await pg.requests.close(ids[1], customer, None, [])
    await pg.requests.close(ids[3], customer, None, [])
    assert await page(state=RequestState.CLOSED) == ([ids[1], ids[3]], 2, 0)
    assert await page(state=RequestState.OPEN, limit=10) == ([ids[0], ids[2], ids[4]], 3, 0)
    assert await page(state=RequestState.OPEN, after=ids[0]) == ([ids[2], ids[4]], 3, 1)
    # An anchor outside the filter still marks a position.
    assert await page(state=RequestState.OPEN, after=ids[1]) == ([ids[2], ids[4]], 3, 1)
    assert await page(state=RequestState.EXPIRED) == ([], 0, 0)

    foreign = (
        (
            await pg.requests.list_for(
                f"other-{customer}", state=None, after=None, before=None, limit=1
            )
        )
        .requests[0]
        .public_id
    )
    for bad in (foreign, public_id()):
        with pytest.raises(NotFound):
            await page(after=bad)
        with pytest.raises(NotFound):
            await page(before=bad)


# -- open_in ----------------------------------------------------------------------


async def test_open_in_names_the_newest_open_request(
    pg: postgres.PostgresStores, customer: str, companies: list[int]
) -> None:
    older = await create(pg, customer, companies[:2])
    newer = await create(pg, customer, companies[1:])
    conv = [t.conversation_id for t in older.targets] + [newer.targets[1].conversation_id]

    assert await pg.requests.open_in([*conv, -1]) == {
        conv[0]: older.public_id,
        conv[1]: newer.public_id,
        conv[2]: newer.public_id,
    }
    await pg.requests.close(newer.public_id, customer, None, [])
    assert await pg.requests.open_in(conv) == {conv[0]: older.public_id, conv[1]: older.public_id}
    await pg.requests.close(older.public_id, customer, None, [])
    assert await pg.requests.open_in(conv) == {}
    assert await pg.requests.open_in([]) == {}


# -- advance ------------------------------------------------------------------------


async def test_statuses_only_move_forward(
    pg: postgres.PostgresStores, customer: str, companies: list[int]
) -> None:
    request = await create(pg, customer, companies[:2])
    a, b = request.targets
    conv = a.conversation_id

    def change(status: TargetStatus, company_id: int = a.company_id) -> StatusChange:
        return StatusChange(request.public_id, customer, company_id, status)

    async def advance(*updates: TargetUpdate) -> list[StatusChange]:
        return await pg.requests.advance(list(updates))

    assert await advance(TargetUpdate(conv, TargetStatus.DELIVERED)) == [
        change(TargetStatus.DELIVERED)
    ]
    assert await advance(TargetUpdate(conv, TargetStatus.DELIVERED)) == []
    assert await advance(TargetUpdate(conv, TargetStatus.SEEN)) == [change(TargetStatus.SEEN)]
    assert await advance(TargetUpdate(conv, TargetStatus.DELIVERED)) == []
    before = await pg.requests.get(request.public_id)
    assert before is not None and before.targets[0].updated_at > a.updated_at

    assert await advance(TargetUpdate(conv, TargetStatus.ANSWERED, offer="<x>1</x>")) == [
        change(TargetStatus.ANSWERED)
    ]
    # Another offer replaces the first one, silently; a plain reply keeps it.
    assert await advance(TargetUpdate(conv, TargetStatus.ANSWERED, offer="<x>2</x>")) == []
    assert await advance(TargetUpdate(conv, TargetStatus.ANSWERED)) == []
    got = await pg.requests.get(request.public_id)
    assert got is not None
    assert (got.targets[0].status, got.targets[0].offer) == (TargetStatus.ANSWERED, "<x>2</x>")
    assert got.targets[1] == b  # untouched

    assert await advance(TargetUpdate(conv, TargetStatus.DECLINED, reason="Out of stock")) == [
        change(TargetStatus.DECLINED)
    ]
    # Final: nothing moves a declined target, not even an offer.
    for update in (
        TargetUpdate(conv, TargetStatus.ANSWERED, offer="<x>3</x>"),
        TargetUpdate(conv, TargetStatus.EXPIRED),
        TargetUpdate(conv, TargetStatus.DECLINED, reason="again"),
    ):
        assert await advance(update) == []
    got = await pg.requests.get(request.public_id)
    assert got is not None
    assert (got.targets[0].status, got.targets[0].offer, got.targets[0].reason) == (
        TargetStatus.DECLINED,
        "<x>2</x>",
        "Out of stock",
    )
    assert await advance(TargetUpdate(-1, TargetStatus.SEEN)) == []
    assert await advance() == []


async def test_several_updates_in_one_call(
    pg: postgres.PostgresStores, customer: str, companies: list[int]
) -> None:
    request = await create(pg, customer, companies)
    a, b, c = (t.conversation_id for t in request.targets)

    changes = await pg.requests.advance(
        [
            TargetUpdate(b, TargetStatus.DELIVERED),
            TargetUpdate(a, TargetStatus.DELIVERED),
            TargetUpdate(b, TargetStatus.SEEN),
            TargetUpdate(c, TargetStatus.ANSWERED, offer="<x>1</x>"),
            TargetUpdate(b, TargetStatus.DELIVERED),
            TargetUpdate(c, TargetStatus.ANSWERED, offer="<x>2</x>"),
            TargetUpdate(c, TargetStatus.SEEN),
        ]
    )

    # One change per target, in the order the conversations first appear.
    assert [(ch.company_id, ch.status) for ch in changes] == [
        (request.targets[1].company_id, TargetStatus.SEEN),
        (request.targets[0].company_id, TargetStatus.DELIVERED),
        (request.targets[2].company_id, TargetStatus.ANSWERED),
    ]
    got = await pg.requests.get(request.public_id)
    assert statuses(got) == [TargetStatus.DELIVERED, TargetStatus.SEEN, TargetStatus.ANSWERED]
    assert got is not None and got.targets[2].offer == "<x>2</x>"

    # Equal final ranks: the first one given stays.
    changes = await pg.requests.advance(
        [TargetUpdate(a, TargetStatus.DECLINED, reason="no"), TargetUpdate(a, TargetStatus.EXPIRED)]
    )
    assert [ch.status for ch in changes] == [TargetStatus.DECLINED]


async def test_advance_applies_to_the_newest_open_request_only(
    pg: postgres.PostgresStores, customer: str, companies: list[int]
) -> None:
    older = await create(pg, customer, companies[:1])
    newer = await create(pg, customer, companies[:1])
    conv = older.targets[0].conversation_id
    assert newer.targets[0].conversation_id == conv

    [moved] = await pg.requests.advance([TargetUpdate(conv, TargetStatus.SEEN)])
    assert moved.public_id == newer.public_id
    assert statuses(await pg.requests.get(older.public_id)) == [TargetStatus.SENT]

    await pg.requests.close(newer.public_id, customer, None, [])
    [moved] = await pg.requests.advance([TargetUpdate(conv, TargetStatus.DELIVERED)])
    assert moved.public_id == older.public_id

    await pg.requests.close(older.public_id, customer, None, [])
    assert await pg.requests.advance([TargetUpdate(conv, TargetStatus.ANSWERED)]) == []
    assert statuses(await pg.requests.get(older.public_id)) == [TargetStatus.DELIVERED]
    assert statuses(await pg.requests.get(newer.public_id)) == [TargetStatus.SEEN]


async def test_concurrent_advances_report_each_move_once(
    pg: postgres.PostgresStores, pg_dsn: str, customer: str, companies: list[int]
) -> None:
    rounds = 5
    stores = [
        await postgres.connect(pg_dsn, min_size=4, max_size=4, command_timeout=10.0)
        for _ in range(3)
    ]
    moves: list[tuple[int, TargetStatus]] = []
    try:
        for _ in range(rounds):
            request = await create(pg, customer, companies)
            convs = [t.conversation_id for t in request.targets]
            # Every call moves every target to SEEN, or finds it there already.
            results = await asyncio.gather(
                *(
                    stores[n % 3].requests.advance(
                        [TargetUpdate(conv, TargetStatus.SEEN) for conv in convs[n % 3 :] + convs]
                    )
                    for n in range(12)
                )
            )
            moves += [(ch.company_id, ch.status) for changes in results for ch in changes]
            await pg.requests.close(request.public_id, customer, None, [])
    finally:
        for store in stores:
            await store.close()
    assert sorted(moves) == sorted((c, TargetStatus.SEEN) for c in companies * rounds)


# -- a routed batch ---------------------------------------------------------------


class _Counting:
    """A connection that notes every statement sent through it."""

    def __init__(self, conn: Any, statements: list[str]) -> None:
        self._conn = conn
        self._statements = statements

    async def fetch(self, query: str, *args: Any) -> Any:
        self._statements.append(query)
        return await self._conn.fetch(query, *args)

    async def execute(self, query: str, *args: Any) -> Any:
        self._statements.append(query)
        return await self._conn.execute(query, *args)


class Counted(Database):
    """A pool whose connections note every statement sent (round trips)."""

    def __init__(self, dsn: str) -> None:
        super().__init__(dsn, min_size=1, max_size=1, command_timeout=10.0)
        self.statements: list[str] = []

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        async with super().acquire() as conn:
            yield _Counting(conn, self.statements)

    def held(self) -> Any:
        return self  # the batch's connection too, counted through acquire()


def answer(conversation_id: int, body: str, key: str | None = None) -> NewMessage:
    return NewMessage(
        conversation_id=conversation_id,
        author=Party.COMPANY,
        sender_jid="bob@localhost",
        body=body,
        stanza_id=str(uuid.uuid4()),
        client_id=key,
        client_key=key,
        pending=False,
        ts=now(),
    )


REPLY_HEAD, REPLY_TAIL = '<reply xmlns="urn:orgchat:request:0" request="', '"/>'


def joining(message: NewMessage) -> RequestReply:
    return RequestReply(message.stanza_id, message.conversation_id, REPLY_HEAD, REPLY_TAIL)


async def test_a_batch_threads_answers_and_moves_statuses_in_its_archive_statement(
    pg: postgres.PostgresStores, pg_dsn: str, sql: Sql, customer: str, companies: list[int]
) -> None:
    """An agent's batch is one statement: its answers get the thread and payload
    of their conversation's newest open request, and the statuses they and
    markers move are moved and returned; an answer archived as a duplicate
    moves nothing."""
    request = await create(pg, customer, companies[:2])
    pid, (a, b) = request.public_id, request.targets
    conv_a, conv_b = a.conversation_id, b.conversation_id
    [plain] = await pg.conversations.open_many([(companies[2], customer, None)])  # no request
    offered, declined, other = (
        answer(conv_a, "320 EUR"),
        answer(conv_b, "Sorry, none left"),
        answer(plain.id, "Hello"),
    )
    extras = BatchExtras(
        replies=[joining(m) for m in (offered, declined, other)],
        updates=[
            TargetUpdate(conv_b, TargetStatus.SEEN),  # a displayed marker
            TargetUpdate(conv_a, TargetStatus.ANSWERED, offer="<x/>", written=offered.stanza_id),
            TargetUpdate(conv_b, TargetStatus.DECLINED, reason="none", written=declined.stanza_id),
            TargetUpdate(plain.id, TargetStatus.ANSWERED, written=other.stanza_id),
        ],
    )
    db = Counted(pg_dsn)
    archive = PgArchiveStore(db)
    try:
        archived = await archive.append_batch([offered, declined, other], extras=extras)
        assert len(db.statements) == 1
        delivered = [archived.delivery_id]

        threaded = (pid, f"{REPLY_HEAD}{pid}{REPLY_TAIL}")
        assert archived.threads == {offered.stanza_id: threaded, declined.stanza_id: threaded}
        rows = await sql.fetch(
            "SELECT stanza_id, thread, payload FROM messages WHERE stanza_id = ANY($1::text[])",
            [offered.stanza_id, declined.stanza_id, other.stanza_id],
        )
        assert {r["stanza_id"]: (r["thread"], r["payload"]) for r in rows} == {
            offered.stanza_id: threaded,
            declined.stanza_id: threaded,
            other.stanza_id: (None, None),
        }
        # One change per target, in the order the conversations first appear.
        assert archived.read.changes == [
            StatusChange(pid, customer, b.company_id, TargetStatus.DECLINED),
            StatusChange(pid, customer, a.company_id, TargetStatus.ANSWERED),
        ]
        got = await pg.requests.get(pid)
        assert got is not None
        assert [(t.status, t.offer, t.reason) for t in got.targets] == [
            (TargetStatus.ANSWERED, "<x/>", None),
            (TargetStatus.DECLINED, None, "none"),
        ]

        # A retransmitted answer is a duplicate: its decline moves nothing (it
        # would win over the fresh answer's new offer), and gets no thread.
        earlier = await archive.append_batch([answer(conv_a, "earlier", key="k1")])
        delivered.append(earlier.delivery_id)
        again, fresh = answer(conv_a, "earlier", key="k1"), answer(conv_a, "Or 300 EUR")
        archived = await archive.append_batch(
            [again, fresh],
            extras=BatchExtras(
                replies=[joining(again), joining(fresh)],
                updates=[
                    TargetUpdate(conv_a, TargetStatus.DECLINED, written=again.stanza_id),
                    TargetUpdate(
                        conv_a, TargetStatus.ANSWERED, offer="<x>2</x>", written=fresh.stanza_id
                    ),
                ],
            ),
        )
        assert [r.duplicate for r in archived.results] == [True, False]
        assert archived.threads == {fresh.stanza_id: threaded}
        assert archived.read.changes == []  # answered already: only the offer is new
        got = await pg.requests.get(pid)
        assert got is not None
        assert (got.targets[0].status, got.targets[0].offer) == (TargetStatus.ANSWERED, "<x>2</x>")
        delivered.append(archived.delivery_id)
        await archive.confirm([d for d in delivered if d is not None])
    finally:
        await db.close()


# -- close --------------------------------------------------------------------------


async def test_close_accepting_an_offer_posts_the_notices(
    pg: postgres.PostgresStores, sql: Sql, customer: str, companies: list[int]
) -> None:
    request = await create(pg, customer, companies)
    notices = [
        Notice(t.company_id, sid, f"closed {n}", f'<closed n="{n}"/>', copies=(copy,))
        for n, t in enumerate(request.targets[:2])
        for sid in [str(uuid.uuid4())]
        for copy in [OwnCopy(customer, f"co{n}@biz.localhost", True, sid, f"closed {n}")]
    ]
    started = now()

    closed, delivery = await pg.requests.close(request.public_id, customer, companies[1], notices)

    assert closed.state is RequestState.CLOSED and closed.accepted_company_id == companies[1]
    assert closed.closed_at is not None and closed.closed_at >= started - dt.timedelta(seconds=1)
    assert closed.targets == request.targets
    assert await pg.requests.get(request.public_id) == closed
    assert delivery is not None
    assert [m.stanza_id for m in delivery.messages] == [n.stanza_id for n in notices]
    for message, notice, target in zip(delivery.messages, notices, request.targets, strict=False):
        assert message.conversation_id == target.conversation_id
        assert (message.author, message.sender_jid, message.body, message.payload) == (
            Party.CUSTOMER,
            customer,
            notice.body,
            notice.payload,
        )
        assert (message.thread, message.ts) == (request.public_id, closed.closed_at)
    assert await sql.fetchval(
        "SELECT message_ids FROM deliveries WHERE id = $1", delivery.id
    ) == sorted(m.id for m in delivery.messages)
    await pg.archive.confirm([delivery.id])
    # The notices are in the users' own archives too (the customer's here).
    rows = await sql.fetch(
        "SELECT peer, txt FROM archive WHERE username = $1 ORDER BY peer",
        customer.partition("@")[0],
    )
    assert [(r["peer"], r["txt"]) for r in rows] == [
        ("co0@biz.localhost", "closed 0"),
        ("co1@biz.localhost", "closed 1"),
    ]

    with pytest.raises(Conflict):
        await pg.requests.close(request.public_id, customer, None, [])


async def test_close_refusals_change_nothing(
    pg: postgres.PostgresStores, sql: Sql, customer: str, companies: list[int]
) -> None:
    request = await create(pg, customer, companies[:2])
    pid = request.public_id
    notice = Notice(companies[0], str(uuid.uuid4()), "bye", "<closed/>")

    with pytest.raises(NotFound):
        await pg.requests.close(pid, f"other-{customer}", None, [])
    with pytest.raises(NotFound):
        await pg.requests.close(public_id(), customer, None, [])
    with pytest.raises(NotFound):
        await pg.requests.close(pid, customer, companies[2], [notice])  # not a target
    with pytest.raises(NotFound):
        await pg.requests.close(
            pid, customer, None, [dataclasses.replace(notice, company_id=companies[2])]
        )
    assert await pg.requests.get(pid) == request
    assert (
        await sql.fetchval("SELECT count(*) FROM messages WHERE stanza_id = $1", notice.stanza_id)
        == 0
    )

    closed, delivery = await pg.requests.close(pid, customer, None, [])
    assert delivery is None
    assert (closed.state, closed.accepted_company_id) == (RequestState.CLOSED, None)
    with pytest.raises(Conflict):
        await pg.requests.close(pid, customer, None, [notice])
    assert (
        await sql.fetchval("SELECT count(*) FROM messages WHERE stanza_id = $1", notice.stanza_id)
        == 0
    )


async def test_removing_a_company_keeps_its_requests(
    pg: postgres.PostgresStores, customer: str, companies: list[int], slug: str
) -> None:
    request = await create(pg, customer, companies[:2])
    await pg.requests.close(request.public_id, customer, companies[0], [])

    await pg.directory.remove_company(f"{slug}-0")

    got = await pg.requests.get(request.public_id)
    assert got is not None and got.accepted_company_id is None
    assert [t.company_id for t in got.targets] == [companies[1]]


# -- expiry -------------------------------------------------------------------------


async def sweep(pg: postgres.PostgresStores, at: dt.datetime, limit: int = 100) -> list[Request]:
    """Expire everything due at ``at`` (other tests' requests included)."""
    swept: list[Request] = []
    while found := await pg.requests.expire_due(at, limit):
        swept += found
    return swept


async def test_expire_due_expires_unanswered_targets(
    pg: postgres.PostgresStores, customer: str, companies: list[int]
) -> None:
    t0 = now() - dt.timedelta(hours=2)
    due = await create(
        pg, customer, companies, created_at=t0, expires_at=t0 + dt.timedelta(hours=1)
    )
    later = await create(pg, customer, companies[:1], created_at=t0, expires_at=now() + DAY)
    closed = await create(pg, customer, companies[1:2], created_at=t0, expires_at=t0)
    await pg.requests.close(closed.public_id, customer, None, [])
    convs = [t.conversation_id for t in due.targets]
    # Conversation 0's newest open request is `later`, the others' is `due`.
    await pg.requests.advance(
        [
            TargetUpdate(convs[0], TargetStatus.SEEN),
            TargetUpdate(convs[1], TargetStatus.ANSWERED, offer="<x/>"),
            TargetUpdate(convs[2], TargetStatus.DECLINED, reason="no"),
        ]
    )

    swept = {r.public_id: r for r in await sweep(pg, now())}

    assert due.public_id in swept and later.public_id not in swept
    assert closed.public_id not in swept
    expired = swept[due.public_id]
    assert (expired.state, expired.closed_at) == (RequestState.EXPIRED, None)
    assert statuses(expired) == [TargetStatus.EXPIRED, TargetStatus.ANSWERED, TargetStatus.DECLINED]
    assert expired == await pg.requests.get(due.public_id)
    assert statuses(await pg.requests.get(later.public_id)) == [TargetStatus.SEEN]
    assert await pg.requests.expire_due(now(), 100) == []
    with pytest.raises(Conflict):
        await pg.requests.close(due.public_id, customer, None, [])
    # Once expired, the request is no longer the open one of its conversations.
    assert await pg.requests.open_in(convs[1:]) == {}

    # Later it is due too.
    swept_later = await sweep(pg, now() + 2 * DAY)
    assert later.public_id in [r.public_id for r in swept_later]


async def test_concurrent_sweepers_share_the_due_requests(
    pg: postgres.PostgresStores, pg_dsn: str, customer: str, companies: list[int]
) -> None:
    t0 = now() - dt.timedelta(hours=1)
    mine = {
        (await create(pg, customer, companies[: 1 + n % 3], created_at=t0, expires_at=t0)).public_id
        for n in range(40)
    }
    other = await postgres.connect(pg_dsn, min_size=1, max_size=4, command_timeout=10.0)
    try:
        results = await asyncio.gather(
            *(
                asyncio.create_task(sweep(stores, now(), limit=3))
                for stores in (pg, other, pg, other)
            )
        )
    finally:
        await other.close()

    every = [r.public_id for swept in results for r in swept]
    assert len(every) == len(set(every))
    assert mine <= set(every)
    assert all(r.state is RequestState.EXPIRED for swept in results for r in swept)
