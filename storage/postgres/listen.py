"""LISTEN on one channel over a dedicated connection that outlives PostgreSQL restarts.

A pooled connection cannot hold a LISTEN (the pool hands it to other callers
and resets it), so each watch opens its own. Notifications sent while the
connection is down are lost; that is why the handler is called with ``None``
after every (re)connection, meaning "resynchronise everything".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from storage.errors import Unavailable, raise_if_cancelling
from storage.postgres.pool import Database, unavailable_on_driver_errors

log = logging.getLogger(__name__)

#: Reconnection backoff bounds (seconds), doubled after each failed attempt.
MIN_DELAY = 0.5
MAX_DELAY = 30.0
#: A connection lost without a FIN/RST (cable, NAT timeout) sends no
#: termination event; an idle watch pings this often to notice it.
PING_INTERVAL = 30.0

Handler = Callable[[str | None], Awaitable[None]]
_AnyConnection: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"


async def _connect(
    db: Database, channel: str, queue: asyncio.Queue[str | None]
) -> asyncpg.Connection[asyncpg.Record]:
    """A new connection that LISTENs on ``channel`` and feeds ``queue``."""

    def on_notify(_conn: _AnyConnection, _pid: int, _channel: str, payload: object) -> None:
        queue.put_nowait(str(payload))

    def on_lost(_conn: _AnyConnection) -> None:
        queue.put_nowait(None)

    with unavailable_on_driver_errors():
        conn = await asyncpg.connect(
            db.dsn,
            timeout=db.timeout,
            command_timeout=db.timeout,
            server_settings={"application_name": f"orgchat-listen-{channel}"},
        )
        conn.add_termination_listener(on_lost)
        try:
            await conn.add_listener(channel, on_notify)
        except BaseException:
            conn.terminate()
            raise
    return conn


async def listen(db: Database, channel: str, handler: Handler) -> None:
    """Call ``handler(None)`` after each connection, ``handler(payload)`` per notification.

    Runs until cancelled. Connection failures, and failures of the handler
    itself (for instance Unavailable while reloading), end the current
    connection; the next one resynchronises after the backoff delay.
    """
    delay = MIN_DELAY
    while True:
        conn: asyncpg.Connection[asyncpg.Record] | None = None
        # Notifications, then None when the connection is lost.
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        try:
            conn = await _connect(db, channel, queue)
            await handler(None)
            log.info("storage.postgres.listening", extra={"fields": {"channel": channel}})
            delay = MIN_DELAY
            while True:
                raise_if_cancelling()
                try:
                    payload = await asyncio.wait_for(queue.get(), PING_INTERVAL)
                except TimeoutError as exc:
                    raise_if_cancelling(exc)
                    with unavailable_on_driver_errors():
                        await conn.execute("SELECT 1")
                    continue
                if payload is None:
                    raise Unavailable("LISTEN connection lost")
                await handler(payload)
        except Unavailable as exc:
            log.warning(
                "storage.postgres.listen_lost",
                extra={"fields": {"channel": channel, "error": str(exc), "retry_in": delay}},
            )
        except Exception:
            log.exception(
                "storage.postgres.listen_handler_failed",
                extra={"fields": {"channel": channel, "retry_in": delay}},
            )
        finally:
            if conn is not None:
                # close() aborts the socket itself if the polite goodbye fails.
                with contextlib.suppress(Exception):
                    await conn.close(timeout=db.timeout)
        raise_if_cancelling()
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_DELAY)
