"""Storage errors: what callers may catch, whatever the backend."""

from __future__ import annotations

import asyncio


class StorageError(Exception):
    """Base class of every storage error."""


class Unavailable(StorageError):
    """The backend (PostgreSQL or Redis) cannot be reached or timed out.

    Routing answers the sender with an error of type ``wait``; nothing that
    was not committed is acknowledged.
    """


class NotFound(StorageError):
    """The company, agent or conversation does not exist."""


class Conflict(StorageError):
    """The row already exists (duplicate slug, agent already added)."""


def raise_if_cancelling(exc: BaseException | None = None) -> None:
    """Raise CancelledError if the current task was asked to stop.

    On Python 3.11 a cancellation that lands inside ``asyncio.wait_for`` or
    ``asyncio.timeout`` (used by asyncpg and redis-py) can surface as a
    TimeoutError, or be swallowed altogether when the awaited operation
    completes at the same moment. A long-running loop that treats timeouts
    as outages and retries would then never stop: such loops call this in
    their error handlers and once per iteration.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError() from exc
