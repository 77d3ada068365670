"""Agent presence in Redis: key ``{prefix}:presence:{agent_jid}``, one hash per agent.

Hash field: the resource; value: its show ("available", "away", "chat",
"dnd", "xa"). An agent is online while the hash has a field; Redis deletes
an emptied hash, so "online" is simply "the key exists".
"""

from __future__ import annotations

from collections.abc import Sequence

from storage.models import PresenceChange
from storage.redis.connection import Client, unavailable_on_redis_errors

# Atomic read-modify-read, so that concurrent updates of two resources of one
# agent cannot both report (or both miss) the online/offline transition.
# KEYS[1]: the agent's hash. ARGV: resource[, show]; no show means unavailable.
_UPDATE = """
local was = redis.call('EXISTS', KEYS[1])
if #ARGV == 1 then
    redis.call('HDEL', KEYS[1], ARGV[1])
else
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return {was, redis.call('EXISTS', KEYS[1])}
"""


class RedisPresenceStore:
    def __init__(self, client: Client, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        # EVALSHA, loading the script again if Redis answers NOSCRIPT
        # (restarted, or SCRIPT FLUSH).
        self._update = client.register_script(_UPDATE)

    def _key(self, agent_jid: str) -> str:
        return f"{self._prefix}:presence:{agent_jid}"

    async def update(self, agent_jid: str, resource: str, show: str | None) -> PresenceChange:
        args = [resource] if show is None else [resource, show]
        with unavailable_on_redis_errors():
            was, now = await self._update(keys=[self._key(agent_jid)], args=args)
        return PresenceChange(was_online=bool(was), is_online=bool(now))

    async def online_among(self, agent_jids: Sequence[str]) -> set[str]:
        if not agent_jids:
            return set()
        with unavailable_on_redis_errors():
            async with self._client.pipeline(transaction=False) as pipe:
                for jid in agent_jids:
                    pipe.exists(self._key(jid))
                found = await pipe.execute()
        return {jid for jid, exists in zip(agent_jids, found, strict=True) if exists}

    async def forget(self, agent_jid: str) -> None:
        with unavailable_on_redis_errors():
            await self._client.delete(self._key(agent_jid))
