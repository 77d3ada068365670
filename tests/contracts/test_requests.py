"""RequestStore: PgRequestStore against FakeRequestStore.

Covered: ``create`` (with its conversations, fan-out delivery and duplicate
window), ``get``, ``open_in``, ``advance`` and ``expire_due``, and what a
routed batch's archive statement does with requests (ArchiveStore.append_batch
with BatchExtras' ``replies`` and ``updates``: FakeArchive with the fake's
requests). Left out:
``list_for`` and ``close`` (the fake raises NotImplementedError: no unit test
pages or closes requests) and ``create``'s refusals (ValueError, NotFound for
an unknown company); tests/integration/storage/test_pg_requests.py has them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import pytest_asyncio

from storage.models import (
    BatchExtras,
    CreatedRequest,
    NewMessage,
    NewRequest,
    Party,
    Request,
    RequestReply,
    RequestState,
    StatusChange,
    TargetStatus,
    TargetUpdate,
)
from storage.protocols import ArchiveStore, RequestStore
from tests.contracts.conftest import RealPostgres, companies, unique
from tests.unit.fakes import FakeArchive, FakeConversations
from tests.unit.fakes_services import FakeRequestStore

pytestmark = [
    pytest.mark.integration,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.usefixtures("forget_new_deliveries"),
]

#: Long past: expire_due() of these tests takes no other test's request.
CREATED = dt.datetime(2001, 3, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
SENT, SEEN, ANSWERED, DECLINED = (
    TargetStatus.SENT,
    TargetStatus.SEEN,
    TargetStatus.ANSWERED,
    TargetStatus.DECLINED,
)


@dataclasses.dataclass
class Requests:
    store: RequestStore
    companies: tuple[int, int, int]
    archive: ArchiveStore  #: whose batches read and move ``store``'s requests

    def new(
        self,
        customer: str,
        company_ids: tuple[int, ...],
        *,
        dedup_key: str = "",
        created_at: dt.datetime = CREATED,
    ) -> NewRequest:
        public_id = unique("r")
        return NewRequest(
            public_id=public_id,
            customer_jid=customer,
            customer_nick="Anna",
            subject="Winter tyres",
            body="How much for four?",
            form=None,
            dedup_key=dedup_key or unique("k-"),
            created_at=created_at,
            expires_at=created_at + DAY,
            company_ids=company_ids,
            stanza_ids=tuple(unique("s-") for _ in company_ids),
            message_body="Request: Winter tyres",
            message_payload=f'<request id="{public_id}"/>',
        )


@pytest_asyncio.fixture
async def requests(pg_or_fake: RealPostgres | None) -> Requests:
    if pg_or_fake is None:
        conversations = FakeConversations()
        archive = FakeArchive(conversations)
        return Requests(FakeRequestStore(conversations, archive), (1, 2, 3), archive)
    a, b, c = await companies(pg_or_fake.stores, 3)
    return Requests(pg_or_fake.stores.requests, (a, b, c), pg_or_fake.stores.archive)


def customer() -> str:
    return unique("anna-") + "@localhost"


async def test_create_opens_the_conversations_and_delivers_the_request(
    requests: Requests,
) -> None:
    anna, (a, b, _) = customer(), requests.companies
    new = requests.new(anna, (b, a))
    created = await requests.store.create(new, 60)
    request = created.request
    assert not created.duplicate
    assert dataclasses.replace(request, id=0, targets=()) == Request(
        0, new.public_id, anna, new.subject, new.body, None, RequestState.OPEN,
        CREATED, CREATED + DAY, None, None, (),
    )  # fmt: skip
    assert [(t.company_id, t.status, t.updated_at) for t in request.targets] == [
        (b, SENT, CREATED),
        (a, SENT, CREATED),
    ]
    assert len({t.conversation_id for t in request.targets}) == 2
    # One message per company, in its conversation, under one delivery record.
    assert created.delivery is not None
    assert [
        (m.conversation_id, m.author, m.sender_jid, m.body, m.stanza_id, m.ts, m.thread)
        for m in created.delivery.messages
    ] == [
        (
            t.conversation_id,
            Party.CUSTOMER,
            anna,
            new.message_body,
            stanza_id,
            CREATED,
            new.public_id,
        )
        for t, stanza_id in zip(request.targets, new.stanza_ids, strict=True)
    ]
    assert {m.payload for m in created.delivery.messages} == {new.message_payload}
    assert await requests.store.get(new.public_id) == request
    assert await requests.store.get(unique("r")) is None
    # The customer's next request to a company goes to the same conversation.
    again = await requests.store.create(requests.new(anna, (a,)), 60)
    assert again.request.targets[0].conversation_id == request.targets[1].conversation_id


async def test_a_duplicate_within_the_window_is_the_earlier_request(requests: Requests) -> None:
    anna, (a, b, _) = customer(), requests.companies
    first = await requests.store.create(requests.new(anna, (a, b), dedup_key="same"), 60)
    soon = CREATED + dt.timedelta(seconds=30)
    repeated = requests.new(anna, (a, b), dedup_key="same", created_at=soon)
    assert await requests.store.create(repeated, 60) == CreatedRequest(
        first.request, duplicate=True, delivery=None
    )
    assert await requests.store.get(repeated.public_id) is None
    # Another key, another customer, a later time or no window: a new request.
    for new, window in [
        (requests.new(anna, (a,), dedup_key="other", created_at=soon), 60),
        (requests.new(customer(), (a,), dedup_key="same", created_at=soon), 60),
        (requests.new(anna, (a,), dedup_key="same", created_at=soon), 10),
        (requests.new(anna, (a,), dedup_key="same", created_at=soon), 0),
    ]:
        created = await requests.store.create(new, window)
        assert not created.duplicate and created.request.public_id == new.public_id


async def test_open_in_names_the_newest_open_request_of_a_conversation(
    requests: Requests,
) -> None:
    anna, (a, b, _) = customer(), requests.companies
    old = (await requests.store.create(requests.new(anna, (a, b)), 0)).request
    new = (await requests.store.create(requests.new(anna, (a,)), 0)).request
    conv_a, conv_b = (t.conversation_id for t in old.targets)
    assert await requests.store.open_in([conv_a, conv_b, conv_b + 10**6]) == {
        conv_a: new.public_id,
        conv_b: old.public_id,
    }
    assert await requests.store.open_in([]) == {}


async def test_advance_moves_statuses_forward_only(requests: Requests) -> None:
    anna, (a, b, _) = customer(), requests.companies
    request = (await requests.store.create(requests.new(anna, (a, b)), 0)).request
    conv_a, conv_b = (t.conversation_id for t in request.targets)
    pid = request.public_id
    changes = await requests.store.advance(
        [TargetUpdate(conv_b, TargetStatus.DELIVERED), TargetUpdate(conv_a, SEEN)]
    )
    assert changes == [
        StatusChange(pid, anna, b, TargetStatus.DELIVERED),
        StatusChange(pid, anna, a, SEEN),
    ]
    assert await requests.store.advance([TargetUpdate(conv_a, TargetStatus.DELIVERED)]) == []
    assert await requests.store.advance([TargetUpdate(conv_a, ANSWERED, offer="<x>1</x>")]) == [
        StatusChange(pid, anna, a, ANSWERED)
    ]
    # A new offer replaces the answered one without a change to report.
    assert await requests.store.advance([TargetUpdate(conv_a, ANSWERED, offer="<x>2</x>")]) == []
    # Several updates of one conversation in a call: the highest rank wins.
    assert await requests.store.advance(
        [
            TargetUpdate(conv_b, SEEN),
            TargetUpdate(conv_b, DECLINED, reason="out of stock"),
            TargetUpdate(conv_b, ANSWERED, offer="<x>3</x>"),
        ]
    ) == [StatusChange(pid, anna, b, DECLINED)]
    assert await requests.store.advance([TargetUpdate(conv_b + 10**6, SEEN)]) == []
    assert await requests.store.advance([]) == []
    stored = await requests.store.get(pid)
    assert stored is not None
    assert [(t.company_id, t.status, t.offer, t.reason) for t in stored.targets] == [
        (a, ANSWERED, "<x>2</x>", None),
        (b, DECLINED, None, "out of stock"),
    ]


async def test_expire_due_expires_open_requests_and_their_unanswered_targets(
    requests: Requests,
) -> None:
    anna, (a, b, c) = customer(), requests.companies
    request = (await requests.store.create(requests.new(anna, (a, b)), 0)).request
    later = await requests.store.create(requests.new(anna, (c,), created_at=CREATED + DAY), 0)
    conv_a = request.targets[0].conversation_id
    await requests.store.advance([TargetUpdate(conv_a, ANSWERED, offer="<x/>")])
    due = request.expires_at

    async def expire(now: dt.datetime) -> list[Request]:
        # PostgreSQL's sweep takes other tests' due requests too.
        return [r for r in await requests.store.expire_due(now, 1000) if r.customer_jid == anna]

    assert await expire(due - dt.timedelta(seconds=1)) == []
    [expired] = await expire(due)
    assert expired.public_id == request.public_id and expired.state is RequestState.EXPIRED
    assert [(t.company_id, t.status) for t in expired.targets] == [
        (a, ANSWERED),
        (b, TargetStatus.EXPIRED),
    ]
    assert await requests.store.get(request.public_id) == expired
    assert await expire(due) == []  # once only
    still_open = await requests.store.get(later.request.public_id)
    assert still_open is not None and still_open.state is RequestState.OPEN
    assert await requests.store.open_in([conv_a]) == {}


def agent_message(conversation_id: int, body: str, key: str | None = None) -> NewMessage:
    return NewMessage(
        conversation_id=conversation_id,
        author=Party.COMPANY,
        sender_jid="mario@localhost",
        body=body,
        stanza_id=unique("s-"),
        client_id=key,
        client_key=key,
        pending=False,
        ts=CREATED,
    )


async def test_a_batch_threads_answers_and_moves_statuses(requests: Requests) -> None:
    anna, (a, b, _) = customer(), requests.companies
    request = (await requests.store.create(requests.new(anna, (a, b)), 0)).request
    conv_a, conv_b = (t.conversation_id for t in request.targets)
    pid = request.public_id
    replied, declined = agent_message(conv_a, "320 EUR", "k1"), agent_message(conv_b, "No")

    def joins(*messages: NewMessage) -> list[RequestReply]:
        return [RequestReply(m.stanza_id, m.conversation_id, "<r id='", "'/>") for m in messages]

    archived = await requests.archive.append_batch(
        [replied, declined],
        extras=BatchExtras(
            replies=joins(replied, declined),
            updates=[
                TargetUpdate(conv_b, SEEN),
                TargetUpdate(conv_a, ANSWERED, offer="<x>1</x>", written=replied.stanza_id),
                TargetUpdate(conv_b, DECLINED, reason="no", written=declined.stanza_id),
            ],
        ),
    )
    threaded = (pid, f"<r id='{pid}'/>")
    assert archived.threads == {replied.stanza_id: threaded, declined.stanza_id: threaded}
    assert archived.read.changes == [
        StatusChange(pid, anna, b, DECLINED),
        StatusChange(pid, anna, a, ANSWERED),
    ]
    # A retransmission is archived as a duplicate: no thread, no move.
    again = agent_message(conv_a, "320 EUR", "k1")
    archived = await requests.archive.append_batch(
        [again],
        extras=BatchExtras(
            replies=joins(again),
            updates=[TargetUpdate(conv_a, DECLINED, written=again.stanza_id)],
        ),
    )
    assert [r.duplicate for r in archived.results] == [True]
    assert archived.threads == {} and archived.read.changes == []
    stored = await requests.store.get(pid)
    assert stored is not None
    assert [(t.status, t.offer, t.reason) for t in stored.targets] == [
        (ANSWERED, "<x>1</x>", None),
        (DECLINED, None, "no"),
    ]
