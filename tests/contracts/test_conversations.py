"""ConversationStore: PgConversationStore against FakeConversations.

Covered: ``open_many``, ``find``, ``of_company`` and ``by_ids``. Left out:
``watch_deleted`` and ``active_customers`` (the fake has neither), and
``open_many``'s NotFound for an unknown company (the fake knows no
companies); tests/integration/storage/test_pg_conversations.py has them.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
import pytest_asyncio

from storage.protocols import ConversationStore
from tests.contracts.conftest import RealPostgres, companies, unique
from tests.unit.fakes import FakeConversations

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

TOKEN = re.compile(r"[a-z2-7]{10}")


@dataclasses.dataclass
class Conversations:
    store: ConversationStore
    companies: tuple[int, int]  #: two companies that exist


@pytest_asyncio.fixture
async def conversations(pg_or_fake: RealPostgres | None) -> Conversations:
    if pg_or_fake is None:
        return Conversations(FakeConversations(), (1, 2))
    a, b = await companies(pg_or_fake.stores, 2)
    return Conversations(pg_or_fake.stores.conversations, (a, b))


async def test_open_many_opens_one_conversation_per_company_and_customer(
    conversations: Conversations,
) -> None:
    store, (a, b) = conversations.store, conversations.companies
    anna, bob = unique("anna-") + "@localhost", unique("bob-") + "@localhost"
    opened = await store.open_many([(a, anna, "Anna"), (b, anna, None), (a, bob, None)])
    assert [(c.company_id, c.customer_jid, c.customer_nick) for c in opened] == [
        (a, anna, "Anna"),
        (b, anna, None),
        (a, bob, None),
    ]
    assert len({c.id for c in opened}) == len({c.token for c in opened}) == 3
    assert all(TOKEN.fullmatch(c.token) for c in opened)
    # Opened again: the same conversations, in the order asked.
    assert await store.open_many([(a, bob, None), (a, anna, None)]) == [opened[2], opened[0]]


async def test_a_new_nick_replaces_the_stored_one(conversations: Conversations) -> None:
    store, (a, _) = conversations.store, conversations.companies
    anna = unique("anna-") + "@localhost"
    [first] = await store.open_many([(a, anna, "Anna")])
    assert await store.open_many([(a, anna, None)]) == [first]  # None keeps the nick
    [renamed] = await store.open_many([(a, anna, "Anna K.")])
    assert renamed == dataclasses.replace(first, customer_nick="Anna K.")
    assert await store.find(a, anna) == renamed


async def test_a_pair_repeated_in_one_call_is_one_conversation_with_its_last_nick(
    conversations: Conversations,
) -> None:
    store, (a, _) = conversations.store, conversations.companies
    anna = unique("anna-") + "@localhost"
    opened = await store.open_many([(a, anna, "Anna"), (a, anna, "Ann"), (a, anna, None)])
    assert opened[0] == opened[1] == opened[2]
    assert opened[0].customer_nick == "Ann"


async def test_find_and_of_company(conversations: Conversations) -> None:
    store, (a, b) = conversations.store, conversations.companies
    anna = unique("anna-") + "@localhost"
    [conv] = await store.open_many([(a, anna, None)])
    assert await store.find(a, anna) == conv
    assert await store.find(b, anna) is None
    assert await store.of_company(a, conv.token) == conv
    # The tenant check: a token names a conversation only with its own company.
    assert await store.of_company(b, conv.token) is None
    assert await store.of_company(a, "zzzzzzzzzz") is None


async def test_by_ids_returns_the_conversations_that_exist(conversations: Conversations) -> None:
    store, (a, b) = conversations.store, conversations.companies
    anna = unique("anna-") + "@localhost"
    first, second = await store.open_many([(a, anna, None), (b, anna, None)])
    missing = max(first.id, second.id) + 1_000_000
    found = await store.by_ids([second.id, missing, first.id])
    assert sorted(found, key=lambda c: c.id) == sorted([first, second], key=lambda c: c.id)
    assert await store.by_ids([]) == []
