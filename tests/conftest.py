"""Fixtures of the tests that use the real storage backends: PostgreSQL and Redis, no mocks.

Shared by the stores' integration tests (tests/integration/storage) and the
contract tests (tests/contracts), so that one pytest session creates the
test database, holds its lock and picks a Redis prefix once for both.

* PostgreSQL: a fresh database ``orgchat_storage_test`` (dropped and created
  through ``ORGCHAT_TEST_PG_ADMIN_URL``, default the dev role on 127.0.0.1),
  migrated once per session.
* Redis (``ORGCHAT_TEST_REDIS_URL``): a random key prefix per session, whose
  keys are deleted at the end.
* :class:`TcpProxy`: a loopback TCP forwarder that can cut every connection
  and refuse new ones, to take a server "down" and back without touching it.

A service that cannot be reached makes the tests error out; they never skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg
import pytest
import pytest_asyncio
import redis.asyncio

from storage import postgres
from storage import redis as redis_storage
from storage.postgres import migrations

PG_ADMIN_URL = os.environ.get(
    "ORGCHAT_TEST_PG_ADMIN_URL", "postgresql://orgchat:orgchat-dev@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("ORGCHAT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TEST_DATABASE = "orgchat_storage_test"


def _dsn_for(database: str, *, port: int | None = None) -> str:
    """The admin URL pointed at another database (and optionally another port)."""
    parts = urlsplit(PG_ADMIN_URL)
    netloc = parts.netloc
    if port is not None:
        netloc = f"{netloc.rsplit(':', 1)[0]}:{port}"
    return parts._replace(netloc=netloc, path=f"/{database}").geturl()


def _redis_url(*, port: int) -> str:
    parts = urlsplit(REDIS_URL)
    return parts._replace(netloc=f"{parts.hostname}:{port}").geturl()


#: Several sessions may run this suite at once (two engineers, `make test`),
#: and they share the database names: the first holds this advisory lock
#: for its whole session, the others wait for it.
_SESSION_LOCK = 0x6F72676368617402


async def _recreate_database(admin: asyncpg.Connection[asyncpg.Record], name: str) -> str:
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    return _dsn_for(name)


async def _drop_database(admin: asyncpg.Connection[asyncpg.Record], name: str) -> None:
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class TcpProxy:
    """Forward 127.0.0.1:<port> to a real server; stop() plays "server down".

    stop() resets every open connection and closes the listening socket, so
    new connections are refused; start() listens again on the same port.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in self._writers:
            writer.transport.abort()
        for task in self._pipes:
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        dst.transport.abort()


# -- PostgreSQL ---------------------------------------------------------------


@pytest_asyncio.fixture(scope="session")
async def pg_admin() -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
    """A connection to the maintenance database, holding the session lock."""
    admin = await asyncpg.connect(PG_ADMIN_URL)
    await admin.execute("SELECT pg_advisory_lock($1)", _SESSION_LOCK)
    yield admin
    await admin.close()  # releases the lock


@pytest_asyncio.fixture(scope="session")
async def pg_dsn(pg_admin: asyncpg.Connection[asyncpg.Record]) -> AsyncIterator[str]:
    dsn = await _recreate_database(pg_admin, TEST_DATABASE)
    assert await postgres.migrate(dsn) == [m.name for m in migrations.available()]
    yield dsn
    await _drop_database(pg_admin, TEST_DATABASE)


@pytest_asyncio.fixture
async def scratch_dsn(pg_admin: asyncpg.Connection[asyncpg.Record]) -> AsyncIterator[str]:
    """An empty, never migrated database, dropped after the test."""
    name = f"{TEST_DATABASE}_scratch"
    yield await _recreate_database(pg_admin, name)
    await _drop_database(pg_admin, name)


@pytest_asyncio.fixture(scope="session")
async def pg(pg_dsn: str) -> AsyncIterator[postgres.PostgresStores]:
    stores = await postgres.connect(pg_dsn, min_size=1, max_size=10, command_timeout=10.0)
    yield stores
    await stores.close()


@pytest_asyncio.fixture(scope="session")
async def sql(pg_dsn: str) -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
    """A plain connection, to look at rows and to change them behind the stores' back."""
    conn = await asyncpg.connect(pg_dsn)
    yield conn
    await conn.close()


@pytest_asyncio.fixture
async def pg_proxy() -> AsyncIterator[TcpProxy]:
    parts = urlsplit(PG_ADMIN_URL)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
def pg_proxy_dsn(pg_proxy: TcpProxy, pg_dsn: str) -> str:
    """The test database, reached through ``pg_proxy``."""
    return _dsn_for(TEST_DATABASE, port=pg_proxy.port)


@pytest.fixture
def slug() -> str:
    """A company slug no other test uses."""
    return f"t-{uuid.uuid4().hex[:12]}"


# -- Redis --------------------------------------------------------------------


@pytest_asyncio.fixture(scope="session")
async def redis_client() -> AsyncIterator[redis.asyncio.Redis]:
    """A plain client, to look at keys and TTLs."""
    client = redis.asyncio.Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


@pytest_asyncio.fixture(scope="session")
async def redis_prefix(redis_client: redis.asyncio.Redis) -> AsyncIterator[str]:
    prefix = f"orgchat-test-{uuid.uuid4().hex[:12]}:biz.localhost"
    yield prefix
    keys = [key async for key in redis_client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await redis_client.delete(*keys)


@pytest_asyncio.fixture(scope="session")
async def rd(redis_prefix: str) -> AsyncIterator[redis_storage.RedisStores]:
    stores = await redis_storage.connect(REDIS_URL, prefix=redis_prefix, timeout=2.0)
    yield stores
    await stores.close()


@pytest_asyncio.fixture
async def redis_proxy() -> AsyncIterator[TcpProxy]:
    parts = urlsplit(REDIS_URL)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
def redis_proxy_url(redis_proxy: TcpProxy) -> str:
    """The test Redis, reached through ``redis_proxy``."""
    return _redis_url(port=redis_proxy.port)
