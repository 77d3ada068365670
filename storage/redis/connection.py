"""The redis-py client, and the one place where its failures become
:class:`storage.errors.Unavailable`.

Creating the client does not connect, so the component starts while Redis is
down. redis-py reconnects by itself on the next command: a pooled socket
that Redis closed is detected (EOF) and replaced before it is used.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from storage.errors import Unavailable, raise_if_cancelling

Client = redis.asyncio.Redis

#: Connection failures (refused, reset, loading dataset, auth) and timeouts.
_TRANSIENT: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    OSError,
    TimeoutError,
)


def create_client(url: str, *, timeout: float) -> Client:
    return redis.asyncio.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=True,
        # No automatic retries (redis-py retries 10 times by default): a
        # command retried after its reply was lost could apply twice (counts,
        # presence transitions), and while Redis is down callers should get
        # Unavailable within one timeout, not after a backoff series.
        retry=Retry(NoBackoff(), 0),
    )


@contextlib.contextmanager
def unavailable_on_redis_errors() -> Iterator[None]:
    try:
        yield
    except _TRANSIENT as exc:
        raise_if_cancelling(exc)
        raise Unavailable(f"Redis unavailable: {type(exc).__name__}: {exc}") from exc
