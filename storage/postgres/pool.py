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
from contextlib import AbstractAsyncContextManager
from types import TracebackType
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


def _as_unavailable(exc: BaseException) -> Unavailable | None:
    """``exc`` as ``Unavailable`` if it is a transient driver failure, else None.

    Constraint violations, syntax errors and misuse of the driver are bugs or
    domain errors (mapped by the table modules), not outages.
    """
    if isinstance(exc, _TRANSIENT):
        raise_if_cancelling(exc)
        return Unavailable(f"PostgreSQL unavailable: {type(exc).__name__}: {exc}")
    if isinstance(exc, asyncpg.InterfaceError):
        # asyncpg reports a connection or pool that is already closed (server
        # gone, or our own close()) as an InterfaceError; its other
        # InterfaceErrors are programming errors and must stay visible.
        if "closed" not in str(exc) and "closing" not in str(exc):
            return None
        return Unavailable(f"PostgreSQL unavailable: {exc}")
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        # A connection left mid-operation by a server that went away ("cannot
        # switch to state ...; another operation is in progress"): the
        # connection is terminated (see _reset), the next one is new.
        return Unavailable(f"PostgreSQL unavailable: {type(exc).__name__}: {exc}")
    return None


@contextlib.contextmanager
def unavailable_on_driver_errors() -> Iterator[None]:
    """Re-raise transient driver failures as ``Unavailable``; let the rest through."""
    try:
        yield
    except Exception as exc:
        if (outage := _as_unavailable(exc)) is not None:
            raise outage from exc
        raise


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
        self._held: list[Held] = []

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

    def acquire(self) -> AbstractAsyncContextManager[Conn]:
        """Borrow a connection; every transient failure inside becomes Unavailable."""
        return _Borrowed(self)

    def held(self) -> Held:
        """A connection kept borrowed between uses, for a caller that runs one
        statement after another (see :class:`Held`)."""
        held = Held(self)
        self._held.append(held)
        return held

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
            for held in self._held:
                if not held.busy:  # one in use goes back when its use ends
                    await held.give_back()
            pool, self._pool = self._pool, None
            # close() waits for every borrowed connection to come back; a
            # query stuck on a dead server must not hold the shutdown. On
            # timeout (a cancellation), asyncpg terminates the pool.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pool.close(), self.timeout)


def _raise_as_unavailable(exc: BaseException | None) -> None:
    """Raise ``exc``'s Unavailable if it is a transient driver failure."""
    if isinstance(exc, Exception) and (outage := _as_unavailable(exc)) is not None:
        raise outage from exc


def _open(conn: Conn) -> bool:
    """Whether a borrowed connection can still be used: asyncpg gives one whose
    server closed it back to the pool by itself, and then refuses every call."""
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:
        return False


class _Borrowed:
    """:meth:`Database.acquire`: a connection from the pool, given back on exit.

    A class rather than a generator-based context manager: it is entered for
    every statement, and the two generators it replaces cost about 20 µs of
    CPU at each use on the development VM (half of a short query's).
    """

    __slots__ = ("_conn", "_db", "_pool")

    def __init__(self, db: Database) -> None:
        self._db = db
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._conn: Conn | None = None

    async def __aenter__(self) -> Conn:
        try:
            self._pool = await self._db._get_pool()
            # The timeout also bounds the wait for a free connection, so an
            # exhausted pool answers Unavailable instead of hanging.
            self._conn = await self._pool.acquire(timeout=self._db.timeout)
        except Exception as exc:
            _raise_as_unavailable(exc)
            raise
        return self._conn

    async def __aexit__(
        self,
        etype: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._pool is not None and self._conn is not None
        try:
            await self._pool.release(self._conn)
        except Exception as failure:
            _raise_as_unavailable(exc)
            _raise_as_unavailable(failure)
            raise
        _raise_as_unavailable(exc)


class Held:
    """A connection kept borrowed between uses (:meth:`Database.held`).

    For a caller that runs one statement after another, as the batch loop
    does for every batch: asyncpg's pool acquire and release cost it about
    50 µs of CPU per batch on the development VM, more than a short query.
    The connection stays one of the pool's (counted in its maximum) and goes
    back to it when a use fails (the pool rolls it back or replaces it),
    when it is found closed (its server restarted), and when the pool
    closes. A second use while one is running, should there be one, borrows
    from the pool as usual, so it never waits behind the first.
    """

    __slots__ = ("_busy", "_conn", "_db", "_pool")

    def __init__(self, db: Database) -> None:
        self._db = db
        #: The connection, and the pool it goes back to (even once the
        #: Database has let go of that pool, closing it).
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._conn: Conn | None = None
        self._busy = False

    def acquire(self) -> AbstractAsyncContextManager[Conn]:
        """The held connection (borrowed first if there is none yet)."""
        if self._busy:
            return _Borrowed(self._db)
        self._busy = True
        return self

    async def __aenter__(self) -> Conn:
        conn = self._conn
        if conn is not None and _open(conn):
            return conn
        try:
            await self.give_back()
            self._pool = pool = await self._db._get_pool()
            self._conn = conn = await pool.acquire(timeout=self._db.timeout)
        except BaseException as exc:
            self._busy = False
            _raise_as_unavailable(exc)
            raise
        return conn

    async def __aexit__(
        self,
        etype: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._busy = False
        if exc is None and not self._db._closed:
            return
        try:
            await self.give_back()
        except Exception as failure:
            # Never hides the use's own failure; the pool replaces what it
            # could not take back (_reset).
            log.warning(
                "storage.postgres.give_back_failed", extra={"fields": {"error": repr(failure)}}
            )
        _raise_as_unavailable(exc)

    @property
    def busy(self) -> bool:
        return self._busy

    async def give_back(self) -> None:
        """Return the connection to the pool (the next use borrows another)."""
        pool, conn, self._pool, self._conn = self._pool, self._conn, None, None
        if pool is None or conn is None:
            return
        with unavailable_on_driver_errors():
            await pool.release(conn)
