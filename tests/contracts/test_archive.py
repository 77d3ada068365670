"""ArchiveStore: PgArchiveStore against FakeArchive.

Covered: ``append_batch`` (results, deduplication, delivery records,
``confirmed``, NotFound for an unknown conversation), ``claim_pending``,
``claim_unconfirmed``, ``confirm`` and ``requeue``. ``claim_unconfirmed`` is
called with ``older_than_s=0`` only: the fake has no clock, and takes every
unconfirmed record as stale (unit tests sweep at once). Left out (not in the
fake): ``page``, ``ends``, ``messages_of`` and ``prune_expired``, tested in
tests/integration/storage/test_pg_archive*.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

import pytest
import pytest_asyncio

from storage.errors import NotFound
from storage.models import (
    ArchivedMessage,
    ArchiveResult,
    Conversation,
    Delivery,
    NewMessage,
    Party,
)
from storage.protocols import ArchiveStore
from tests.contracts.conftest import RealPostgres, companies, unique
from tests.unit.fakes import FakeArchive, FakeConversations

pytestmark = [
    pytest.mark.integration,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.usefixtures("forget_new_deliveries"),
]

TS = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
#: More than any number of records left unconfirmed in the test database.
ALL = 100_000


@dataclasses.dataclass
class Archive:
    store: ArchiveStore
    convs: tuple[Conversation, Conversation]  #: of two companies

    @property
    def company_ids(self) -> tuple[int, int]:
        return self.convs[0].company_id, self.convs[1].company_id


@pytest_asyncio.fixture
async def archive(pg_or_fake: RealPostgres | None) -> Archive:
    customer = unique("anna-") + "@localhost"
    if pg_or_fake is None:
        conversations = FakeConversations()
        store: ArchiveStore = FakeArchive(conversations)
        ids = [1, 2]
    else:
        conversations, store = pg_or_fake.stores.conversations, pg_or_fake.stores.archive
        ids = await companies(pg_or_fake.stores, 2)
    a, b = await conversations.open_many([(company, customer, None) for company in ids])
    return Archive(store, (a, b))


def message(
    conv: Conversation,
    body: str,
    *,
    author: Party = Party.CUSTOMER,
    client_key: str | None = None,
    pending: bool = False,
    stanza_id: str | None = None,
) -> NewMessage:
    sender = conv.customer_jid if author is Party.CUSTOMER else "mario@localhost"
    return NewMessage(
        conversation_id=conv.id,
        author=author,
        sender_jid=sender,
        body=body,
        stanza_id=stanza_id or unique("s-"),
        client_id=client_key,
        client_key=client_key,
        pending=pending,
        ts=TS,
        thread=f"thread of {body}",
        payload=f"<x>{body}</x>",
    )


async def unconfirmed(store: ArchiveStore, delivery_id: int | None) -> Delivery | None:
    found = [d for d in await store.claim_unconfirmed(0, ALL) if d.id == delivery_id]
    return found[0] if found else None


def carried(messages: Sequence[NewMessage | ArchivedMessage]) -> list[tuple[object, ...]]:
    """What messages carry through the archive (all but the archive id)."""
    return [
        (
            m.conversation_id,
            m.author,
            m.sender_jid,
            m.body,
            m.stanza_id,
            m.client_id,
            m.ts,
            m.thread,
            m.payload,
        )
        for m in messages
    ]


def fields(delivery: Delivery | None) -> list[tuple[object, ...]]:
    assert delivery is not None
    return carried(delivery.messages)


def sent(*messages: NewMessage) -> list[tuple[object, ...]]:
    return carried(messages)


async def test_a_batch_is_archived_in_order_and_its_new_messages_delivered(
    archive: Archive,
) -> None:
    conv, _ = archive.convs
    asked = message(conv, "price?", client_key="c1")
    answer = message(conv, "12 EUR", author=Party.COMPANY)
    waiting = message(conv, "anyone?", pending=True)
    batch = await archive.store.append_batch([asked, answer, waiting])
    assert batch.results == [
        ArchiveResult(asked.stanza_id, False),
        ArchiveResult(answer.stanza_id, False),
        ArchiveResult(waiting.stanza_id, False),
    ]
    delivery = await unconfirmed(archive.store, batch.delivery_id)
    assert fields(delivery) == sent(asked, answer)  # not the pending one
    assert delivery is not None and delivery.messages[0].id < delivery.messages[1].id
    await archive.store.confirm([delivery.id])
    assert await unconfirmed(archive.store, delivery.id) is None


async def test_a_batch_confirms_earlier_deliveries(archive: Archive) -> None:
    conv, _ = archive.convs
    first = await archive.store.append_batch([message(conv, "one")])
    second = await archive.store.append_batch([message(conv, "two")], [first.delivery_id or 0])
    assert await unconfirmed(archive.store, first.delivery_id) is None
    assert await unconfirmed(archive.store, second.delivery_id) is not None
    # An empty batch only confirms.
    assert (await archive.store.append_batch([], [second.delivery_id or 0])).delivery_id is None
    assert await unconfirmed(archive.store, second.delivery_id) is None


async def test_a_retransmission_is_archived_once(archive: Archive) -> None:
    conv, _ = archive.convs
    original = message(conv, "hello", client_key="k1")
    await archive.store.append_batch([original])
    again = message(conv, "hello", client_key="k1")
    twice = message(conv, "twice", client_key="k2")
    twice_again = message(conv, "twice", client_key="k2")
    # Another sender's key is theirs alone.
    other_sender = dataclasses.replace(
        message(conv, "mine", client_key="k1"), author=Party.COMPANY, sender_jid="mario@localhost"
    )
    batch = await archive.store.append_batch([again, twice, twice_again, other_sender])
    assert batch.results == [
        ArchiveResult(original.stanza_id, True),
        ArchiveResult(twice.stanza_id, False),
        ArchiveResult(twice.stanza_id, True),
        ArchiveResult(other_sender.stanza_id, False),
    ]
    assert fields(await unconfirmed(archive.store, batch.delivery_id)) == sent(twice, other_sender)
    # A batch retried after its commit was lost: the same stanza-ids, nothing new.
    retried = await archive.store.append_batch([twice, other_sender])
    assert retried.results == [
        ArchiveResult(twice.stanza_id, True),
        ArchiveResult(other_sender.stanza_id, True),
    ]
    assert retried.delivery_id is None


async def test_an_unknown_conversation_is_not_found(archive: Archive) -> None:
    conv, other = archive.convs
    ghost = dataclasses.replace(
        message(conv, "boo"), conversation_id=max(conv.id, other.id) + 10**6
    )
    with pytest.raises(NotFound):
        await archive.store.append_batch([ghost])


async def test_pending_messages_are_claimed_per_company_oldest_first(archive: Archive) -> None:
    (a, b), (company_a, company_b) = archive.convs, archive.company_ids
    first, other, second = (
        message(a, "first", pending=True),
        message(b, "other", pending=True),
        message(a, "second", pending=True),
    )
    batch = await archive.store.append_batch([first, other, second])
    assert batch.delivery_id is None  # nothing to deliver yet
    claimed = await archive.store.claim_pending([company_a], 1)
    assert claimed is not None and fields(claimed) == sent(first)
    assert fields(await unconfirmed(archive.store, claimed.id)) == sent(first)
    claimed = await archive.store.claim_pending([company_a], 10)
    assert claimed is not None and fields(claimed) == sent(second)
    assert await archive.store.claim_pending([company_a], 10) is None
    assert await archive.store.claim_pending([], 10) is None
    claimed = await archive.store.claim_pending([company_b, company_a], 10)
    assert claimed is not None and fields(claimed) == sent(other)


async def test_requeue_makes_customer_messages_pending_again(archive: Archive) -> None:
    conv, _ = archive.convs
    asked = message(conv, "still there?")
    answer = message(conv, "yes", author=Party.COMPANY)
    batch = await archive.store.append_batch([asked, answer])
    await archive.store.confirm([batch.delivery_id or 0])
    await archive.store.requeue([asked.stanza_id, answer.stanza_id, unique("s-")])
    claimed = await archive.store.claim_pending([conv.company_id], 10)
    assert claimed is not None and fields(claimed) == sent(asked)  # the customer's only
    await archive.store.requeue([])
