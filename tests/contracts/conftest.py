"""What the contract suites share: the backend parameter, unique names, tidying up.

A suite's fixture takes :func:`pg_or_fake` (or :func:`redis_or_fake`): its
test functions then run once against the real store ("postgres", "redis")
and once against the fake ("fake"). The real stores are the session's
(tests/conftest.py); they are fetched only for the real run, so that a fake's
run needs no server, and a missing server fails the real run, never skips it.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio

from storage import postgres
from storage import redis as redis_storage
from storage.models import CompanyDraft


def unique(prefix: str) -> str:
    """A name no other test uses (company slugs, JIDs, public ids)."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


async def companies(stores: postgres.PostgresStores, n: int) -> list[int]:
    """The ids of ``n`` new companies (what conversations need to exist)."""
    return [
        (await stores.directory.add_company(CompanyDraft(unique("c-"), "Company"))).id
        for _ in range(n)
    ]


@dataclasses.dataclass(frozen=True)
class RealPostgres:
    stores: postgres.PostgresStores
    sql: asyncpg.Connection[asyncpg.Record]  #: to tidy up behind the stores' back


@pytest.fixture(params=["postgres", "fake"])
def pg_or_fake(request: pytest.FixtureRequest) -> RealPostgres | None:
    """The PostgreSQL stores for the "postgres" run of a test; None for its "fake" run."""
    if request.param == "fake":
        return None
    return RealPostgres(request.getfixturevalue("pg"), request.getfixturevalue("sql"))


@pytest.fixture(params=["redis", "fake"])
def redis_or_fake(request: pytest.FixtureRequest) -> redis_storage.RedisStores | None:
    """The Redis stores for the "redis" run of a test; None for its "fake" run."""
    if request.param == "fake":
        return None
    stores: redis_storage.RedisStores = request.getfixturevalue("rd")
    return stores


@pytest_asyncio.fixture
async def forget_new_deliveries(pg_or_fake: RealPostgres | None) -> AsyncIterator[None]:
    """Delete the delivery records a test leaves in PostgreSQL (as confirming them would).

    The storage integration tests share the database and expect no delivery
    record that nobody confirmed for a minute.
    """
    if pg_or_fake is None:
        yield
        return
    last = await pg_or_fake.sql.fetchval("SELECT coalesce(max(id), 0) FROM deliveries")
    yield
    await pg_or_fake.sql.execute("DELETE FROM deliveries WHERE id > $1", last)
