"""ConversationStore on PostgreSQL: get-or-create in batches, tokens, nicks, lookups."""

from __future__ import annotations

import asyncio
import re

import asyncpg
import pytest
import pytest_asyncio

from storage import postgres
from storage.errors import NotFound
from storage.models import CompanyDraft

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

Sql = asyncpg.Connection  # the plain connection of the `sql` fixture

TOKEN = re.compile(r"^[a-z2-7]{10}$")


@pytest_asyncio.fixture
async def company_id(pg: postgres.PostgresStores, slug: str) -> int:
    return (await pg.directory.add_company(CompanyDraft(slug=slug, name="Pizza"))).id


async def test_open_many_creates_in_order(pg: postgres.PostgresStores, company_id: int) -> None:
    jids = [f"customer{n}@localhost" for n in range(5)]

    opened = await pg.conversations.open_many([(company_id, jid, None) for jid in jids])

    assert [c.customer_jid for c in opened] == jids
    assert all(c.company_id == company_id and c.customer_nick is None for c in opened)
    assert all(TOKEN.match(c.token) for c in opened)
    assert len({c.token for c in opened}) == 5
    assert len({c.id for c in opened}) == 5


async def test_open_many_gets_existing_ones(pg: postgres.PostgresStores, company_id: int) -> None:
    [first] = await pg.conversations.open_many([(company_id, "old@localhost", "Old")])

    opened = await pg.conversations.open_many(
        [
            (company_id, "new@localhost", None),
            (company_id, "old@localhost", None),  # None keeps the stored nick
        ]
    )

    assert opened[1] == first
    assert opened[0].customer_jid == "new@localhost" and opened[0].id != first.id


async def test_repeated_pairs_in_one_call(pg: postgres.PostgresStores, company_id: int) -> None:
    opened = await pg.conversations.open_many(
        [
            (company_id, "a@localhost", "First"),
            (company_id, "b@localhost", None),
            (company_id, "a@localhost", None),
            (company_id, "a@localhost", "Last"),
        ]
    )

    assert opened[0] == opened[2] == opened[3]
    assert opened[0].customer_nick == "Last"  # the last non-None nick wins
    assert opened[1].customer_jid == "b@localhost"


async def test_token_is_not_derived_from_the_jid(
    pg: postgres.PostgresStores, company_id: int, slug: str
) -> None:
    other = (await pg.directory.add_company(CompanyDraft(slug=f"{slug}-2", name="Other"))).id
    a, b = await pg.conversations.open_many(
        [(company_id, "same@localhost", None), (other, "same@localhost", None)]
    )
    assert a.token != b.token
    assert "same" not in a.token


async def test_new_nick_replaces_the_stored_one(
    pg: postgres.PostgresStores, sql: Sql, company_id: int
) -> None:
    [conversation] = await pg.conversations.open_many([(company_id, "c@localhost", "Carol")])
    version = await sql.fetchval(
        "SELECT xmin::text FROM conversations WHERE id = $1", conversation.id
    )

    [same] = await pg.conversations.open_many([(company_id, "c@localhost", "Carol")])
    [kept] = await pg.conversations.open_many([(company_id, "c@localhost", None)])
    # Neither call wrote the row.
    assert (
        await sql.fetchval("SELECT xmin::text FROM conversations WHERE id = $1", conversation.id)
        == version
    )
    assert same == kept == conversation

    [renamed] = await pg.conversations.open_many([(company_id, "c@localhost", "Caroline")])
    assert renamed.customer_nick == "Caroline"
    assert (renamed.id, renamed.token) == (conversation.id, conversation.token)
    assert await pg.conversations.find(company_id, "c@localhost") == renamed


async def test_concurrent_opens_agree(pg: postgres.PostgresStores, company_id: int) -> None:
    pairs = [(company_id, f"race{n}@localhost", None) for n in range(20)]

    results = await asyncio.gather(*(pg.conversations.open_many(pairs) for _ in range(4)))

    assert all(result == results[0] for result in results)


async def test_unknown_company_is_not_found(pg: postgres.PostgresStores) -> None:
    with pytest.raises(NotFound):
        await pg.conversations.open_many([(-1, "x@localhost", None)])


async def test_open_nothing(pg: postgres.PostgresStores) -> None:
    assert await pg.conversations.open_many([]) == []


async def test_find_of_company_by_ids(pg: postgres.PostgresStores, company_id: int) -> None:
    a, b = await pg.conversations.open_many(
        [(company_id, "a@localhost", None), (company_id, "b@localhost", "Bee")]
    )

    assert await pg.conversations.find(company_id, "a@localhost") == a
    assert await pg.conversations.find(company_id, "nobody@localhost") is None
    assert await pg.conversations.of_company(company_id, b.token) == b
    assert await pg.conversations.of_company(company_id, "aaaaaaaaaa") is None
    assert await pg.conversations.of_company(company_id + 1, b.token) is None
    assert sorted(await pg.conversations.by_ids([b.id, a.id, -5]), key=lambda c: c.id) == sorted(
        [a, b], key=lambda c: c.id
    )
    assert await pg.conversations.by_ids([]) == []
