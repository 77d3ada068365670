"""Rate limits and first-seen markers in Redis, shared by every component process.

Keys: ``{prefix}:limit:{window_s}:{kind}:{subject}`` (fixed-window counters,
:class:`~storage.models.Limit`) and ``{prefix}:seen:{kind}:{part}:{part}...``
(markers, :class:`~storage.models.Once`). A counter about one person ends with
``:{bare JID}`` (``customer:anna@localhost``), which is how :meth:`forget`
finds them. Each call is one round trip: the rate
limit of a whole batch is one script call, with one INCRBY per distinct
subject however many events it has in the batch.
"""

from __future__ import annotations

from collections.abc import Sequence

from storage.models import Limit, Once
from storage.redis.connection import Client, unavailable_on_redis_errors

# KEYS: counters; ARGV[1]: window (s); ARGV[2..]: events per counter.
# Returns each counter's value after the increment. The window starts at a
# counter's first event: the expiry is set when the INCRBY created it, and
# set again should it be missing (a counter left without one by an older
# version or a failed call), so it never outlives its window by much.
_HIT = """
local counts = {}
for i, key in ipairs(KEYS) do
    local n = tonumber(ARGV[i + 1])
    local count = redis.call('INCRBY', key, n)
    if count == n or redis.call('TTL', key) == -1 then
        redis.call('EXPIRE', key, ARGV[1])
    end
    counts[i] = count
end
return counts
"""


class RedisLimitStore:
    def __init__(self, client: Client, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._hit = client.register_script(_HIT)

    async def hit(
        self, kind: Limit, subjects: Sequence[str | int], limit: int, window_s: int
    ) -> list[bool]:
        """Count one event per subject; True where its window holds at most ``limit``.

        Events of one subject are counted in the order given: if a batch
        crosses the limit, its first events pass and the rest do not, as if
        they had been counted one by one.
        """
        if not subjects:
            return []
        events: dict[str | int, int] = {}
        for subject in subjects:
            events[subject] = events.get(subject, 0) + 1
        keys = [f"{self._prefix}:limit:{window_s}:{kind}:{subject}" for subject in events]
        with unavailable_on_redis_errors():
            counts = await self._hit(keys=keys, args=[window_s, *events.values()])
        # Value of each subject's counter before this batch, then count up.
        seen = {
            subject: int(count) - n
            for (subject, n), count in zip(events.items(), counts, strict=True)
        }
        allowed = []
        for subject in subjects:
            seen[subject] += 1
            allowed.append(seen[subject] <= limit)
        return allowed

    async def first_seen(
        self, kind: Once, keys: Sequence[Sequence[str | int]], ttl_s: int
    ) -> list[bool]:
        if not keys:
            return []
        with unavailable_on_redis_errors():
            async with self._client.pipeline(transaction=False) as pipe:
                for key in keys:
                    name = ":".join(str(part) for part in (kind, *key))
                    pipe.set(f"{self._prefix}:seen:{name}", 1, nx=True, ex=ttl_s)
                replies = await pipe.execute()
        return [bool(reply) for reply in replies]

    async def forget(self, jid: str) -> int:
        """Delete every counter whose subject ends with ``:{jid}``; returns how many.

        Scans the key space (SCAN, never KEYS): for an operator's command, not
        for a hot path.
        """
        pattern = f"{_glob_escape(self._prefix)}:limit:*:{_glob_escape(jid)}"
        with unavailable_on_redis_errors():
            keys = [key async for key in self._client.scan_iter(match=pattern, count=1000)]
            return int(await self._client.delete(*keys)) if keys else 0


def _glob_escape(text: str) -> str:
    """``text`` matched literally by a Redis glob pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)
