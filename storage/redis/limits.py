"""Rate limits and first-seen markers in Redis, shared by every component process.

Keys: ``{prefix}:limit:{window_s}:{subject}`` (fixed-window counters) and
``{prefix}:seen:{key}`` (markers). Each call is one pipelined round trip.
"""

from __future__ import annotations

from collections.abc import Sequence

from storage.redis.connection import Client, unavailable_on_redis_errors


class RedisLimitStore:
    def __init__(self, client: Client, prefix: str) -> None:
        self._client = client
        self._prefix = prefix

    async def hit(self, subjects: Sequence[str], limit: int, window_s: int) -> list[bool]:
        """Count one event per subject; True where its window holds at most ``limit``.

        The window starts at a subject's first event: EXPIRE NX gives the
        counter its lifetime once and never extends it. Should a reply be
        lost between the two commands, the next hit sets the expiry.
        (EXPIRE NX needs Redis >= 7.0.)
        """
        if not subjects:
            return []
        with unavailable_on_redis_errors():
            async with self._client.pipeline(transaction=False) as pipe:
                for subject in subjects:
                    key = f"{self._prefix}:limit:{window_s}:{subject}"
                    pipe.incr(key)
                    pipe.expire(key, window_s, nx=True)
                replies = await pipe.execute()
        return [count <= limit for count in replies[0::2]]

    async def first_seen(self, keys: Sequence[str], ttl_s: int) -> list[bool]:
        if not keys:
            return []
        with unavailable_on_redis_errors():
            async with self._client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.set(f"{self._prefix}:seen:{key}", 1, nx=True, ex=ttl_s)
                replies = await pipe.execute()
        return [bool(reply) for reply in replies]
