"""The asyncpg connection pool, and the one place where driver failures become
:class:`storage.errors.Unavailable`.

The component must start while PostgreSQL is down and recover by itself when
it returns, so the pool is opened lazily: :meth:`Database.acquire` opens it on
first use and again after a failed attempt. While PostgreSQL is unreachable
every call raises ``Unavailable`` quickly (one shared connection attempt, not
one per caller); once it is back the next call succeeds. Connections that die
inside an open pool are replaced by asyncpg itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from storage.errors import Unavailable, raise_if_cancelling

log = logging.getLogger(__name__)

#: What the per-table modules receive: a connection borrowed from the pool.
Conn: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"

#: Failures that mean "the server cannot be reached or cannot serve now":
#: network errors and timeouts, connection-class SQLSTATEs (08), operator
#: intervention (57: shutdown, crash recovery, "starting up", cancelled query)
#: and insufficient resources (53: too many connections, out of memory/disk).
_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,  # includes ConnectionError, ConnectionRefusedError, ssl.SSLError
    TimeoutError,  # also asyncio.TimeoutError (an alias since 3.11)
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # AdminShutdown, CannotConnectNow, ...
    asyncpg.exceptions.InsufficientResourcesError,  # TooManyConnections, ...
)


@contextlib.contextmanager
def unavailable_on_driver_errors() -> Iterator[None]:
    """Re-raise transient driver failures as ``Unavailable``; let the rest through.

    Constraint violations, syntax errors and misuse of the driver are bugs or
    domain errors (mapped by the table modules), not outages.
    """
    try:
        yield
    except _TRANSIENT as exc:
        raise_if_cancelling(exc)
        raise Unavailable(f"PostgreSQL unavailable: {type(exc).__name__}: {exc}") from exc
    except asyncpg.InterfaceError as exc:
        # asyncpg reports a connection or pool that is already closed (server
        # gone, or our own close()) as an InterfaceError; its other
        # InterfaceErrors are programming errors and must stay visible.
        if "closed" not in str(exc) and "closing" not in str(exc):
            raise
        raise Unavailable(f"PostgreSQL unavailable: {exc}") from exc
    except asyncpg.exceptions.InternalClientError as exc:
        # A connection left mid-operation by a server that went away ("cannot
        # switch to state ...; another operation is in progress"): the
        # connection is terminated (see _reset), the next one is new.
        raise Unavailable(f"PostgreSQL unavailable: {type(exc).__name__}: {exc}") from exc


async def _reset(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """What a connection needs before it goes back to the pool.

    asyncpg's default reset (advisory unlocks, CLOSE ALL, UNLISTEN, RESET
    ALL) costs a round trip on every release, twice per routed batch. Pooled
    connections here never change session state (LISTEN has connections of
    its own, migrations too), so only an interrupted transaction needs undoing.

    A connection that cannot be rolled back (its server restarted, or a
    query was cancelled half-way) is terminated rather than returned: the
    pool opens a new one on the next acquire, and the failure never reaches
    the caller that was only giving the connection back.
    """
    if not conn.is_in_transaction():
        return
    try:
        await conn.execute("ROLLBACK")
    except Exception as exc:
        raise_if_cancelling(exc)
        log.warning("storage.postgres.connection_dropped", extra={"fields": {"error": repr(exc)}})
        conn.terminate()


class Database:
    """A lazily opened pool plus the settings the LISTEN connections reuse."""

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int,
        max_size: int,
        command_timeout: float,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.dsn = dsn
        #: Server settings of every connection (beside its application name).
        self.settings = {"application_name": "orgchat", **(settings or {})}
        #: Bound for establishing one connection and for one query.
        self.timeout = command_timeout
        self._min_size = min_size
        self._max_size = max_size
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._opening: asyncio.Task[asyncpg.Pool[asyncpg.Record]] | None = None
        self._closed = False

    async def open(self) -> None:
        """Try to open the pool now; stay usable (lazy) if PostgreSQL is down."""
        try:
            with unavailable_on_driver_errors():
                await self._get_pool()
        except Unavailable as exc:
            log.warning(
                "storage.postgres.pool_deferred",
                extra={"fields": {"error": str(exc)}},
            )

    async def _get_pool(self) -> asyncpg.Pool[asyncpg.Record]:
        if self._closed:
            raise Unavailable("PostgreSQL stores are closed")
        if self._pool is not None:
            return self._pool
        # Every caller waits for the same attempt: while PostgreSQL is down a
        # burst of requests costs one connection attempt, not one each.
        if self._opening is None:
            self._opening = asyncio.create_task(self._create_pool())
            self._opening.add_done_callback(self._opened)
        # shield: a caller that gives up must not cancel the others' attempt.
        return await asyncio.shield(self._opening)

    async def _create_pool(self) -> asyncpg.Pool[asyncpg.Record]:
        return await asyncpg.create_pool(
            self.dsn,
            min_size=self._min_size,
            max_size=self._max_size,
            command_timeout=self.timeout,
            timeout=self.timeout,
            server_settings=self.settings,
            reset=_reset,
        )

    def _opened(self, task: asyncio.Task[asyncpg.Pool[asyncpg.Record]]) -> None:
        self._opening = None
        # A failed attempt leaves nothing behind (asyncpg closes the half-made
        # pool), so the next call simply tries again. Reading the exception
        # here also keeps asyncio from reporting it as never retrieved.
        if task.cancelled() or task.exception() is not None:
            return
        if self._closed:  # close() ran while this attempt was finishing
            task.result().terminate()
        else:
            self._pool = task.result()

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Conn]:
        """Borrow a connection; every transient failure inside becomes Unavailable."""
        with unavailable_on_driver_errors():
            pool = await self._get_pool()
            # The timeout also bounds the wait for a free connection, so an
            # exhausted pool answers Unavailable instead of hanging.
            async with pool.acquire(timeout=self.timeout) as conn:
                yield conn

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        """Borrow a connection inside a transaction (committed on normal exit)."""
        async with self.acquire() as conn, conn.transaction():
            yield conn

    async def close(self) -> None:
        self._closed = True
        if self._opening is not None:
            self._opening.cancel()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            # close() waits for every borrowed connection to come back; a
            # query stuck on a dead server must not hold the shutdown. On
            # timeout (a cancellation), asyncpg terminates the pool.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pool.close(), self.timeout)
