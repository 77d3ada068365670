"""Rate limits and first-seen marks in Redis, shared by every component process.

Counters are fixed windows (:class:`~storage.models.Limit`), marks are done
once within a time (:class:`~storage.models.Once`); :mod:`.keys` names them.
Each call is one round trip, through :mod:`.admission`: the rate limit of a
whole batch is one script call, with one INCRBY per distinct subject however
many events it has in the batch.
"""

from __future__ import annotations

from collections.abc import Sequence

from storage.models import Admission, Hits, Limit, Marks, Once
from storage.redis import keys
from storage.redis.admission import RedisAdmission
from storage.redis.connection import Client, unavailable_on_redis_errors


class RedisLimitStore:
    def __init__(self, client: Client, prefix: str, admission: RedisAdmission) -> None:
        self._client = client
        self._prefix = prefix
        self._admission = admission

    async def hit(
        self, kind: Limit, subjects: Sequence[str | int], limit: int, window_s: int
    ) -> list[bool]:
        """Count one event per subject; True where its window holds at most ``limit``."""
        admitted = await self._admission.admit(
            Admission(hits=(Hits(kind, subjects, limit, window_s),))
        )
        return admitted.allowed[0]

    async def first_seen(
        self, kind: Once, keys: Sequence[Sequence[str | int]], ttl_s: int
    ) -> list[bool]:
        return (await self._admission.admit(Admission(marks=Marks(kind, keys, ttl_s)))).first

    async def forget(self, jid: str) -> int:
        """Delete every counter whose subject ends with ``:{jid}``; returns how many.

        Scans the key space (SCAN, never KEYS): for an operator's command, not
        for a hot path.
        """
        pattern = keys.limits_of(self._prefix, jid)
        with unavailable_on_redis_errors():
            found = [key async for key in self._client.scan_iter(match=pattern, count=1000)]
            return int(await self._client.delete(*found)) if found else 0
