"""Agent presence in Redis: one hash per agent (:mod:`.keys` names it).

Hash field: the resource; value: ``"<show> <ms>"``, its show ("available",
"away", "chat", "dnd", "xa") and the Redis server time of the last presence
seen from it. An agent is online while the hash has a field; Redis deletes an
emptied hash, so "online" is simply "the key exists". The time lets a
re-probe drop the resources that did not answer (``prune``) without ever
forgetting the ones that did.

A generation key names the data Redis holds: set once, never
expiring, so a new value means Redis lost everything (restarted without
persistence, flushed) and presence must be learnt again (``generation``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from storage.models import Admission, PresenceChange
from storage.redis import keys
from storage.redis.admission import RedisAdmission
from storage.redis.connection import Client, unavailable_on_redis_errors

# Atomic read-modify-read, so that concurrent updates of two resources of one
# agent cannot both report (or both miss) the online/offline transition.
# KEYS[1]: the agent's hash. ARGV: resource[, show]; no show means unavailable.
_UPDATE = """
local was = redis.call('EXISTS', KEYS[1])
if #ARGV == 1 then
    redis.call('HDEL', KEYS[1], ARGV[1])
else
    local t = redis.call('TIME')
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. (t[1] * 1000 + math.floor(t[2] / 1000)))
end
return {was, redis.call('EXISTS', KEYS[1])}
"""

# Drop every resource last seen before ARGV[1] (ms); return the keys emptied.
_PRUNE = """
local emptied = {}
for _, key in ipairs(KEYS) do
    local fields = redis.call('HGETALL', key)
    for i = 1, #fields, 2 do
        local seen = tonumber(string.match(fields[i + 1], ' (%d+)$')) or 0
        if seen < tonumber(ARGV[1]) then
            redis.call('HDEL', key, fields[i])
        end
    end
    if #fields > 0 and redis.call('EXISTS', key) == 0 then
        table.insert(emptied, key)
    end
end
return emptied
"""


class RedisPresenceStore:
    def __init__(self, client: Client, prefix: str, admission: RedisAdmission) -> None:
        self._client = client
        self._prefix = prefix
        self._admission = admission
        # EVALSHA, loading the script again if Redis answers NOSCRIPT
        # (restarted, or SCRIPT FLUSH).
        self._update = client.register_script(_UPDATE)
        self._prune = client.register_script(_PRUNE)

    def _key(self, agent_jid: str) -> str:
        return keys.presence(self._prefix, agent_jid)

    async def update(self, agent_jid: str, resource: str, show: str | None) -> PresenceChange:
        args = [resource] if show is None else [resource, show]
        with unavailable_on_redis_errors():
            was, now = await self._update(keys=[self._key(agent_jid)], args=args)
        return PresenceChange(was_online=bool(was), is_online=bool(now))

    async def online_among(self, agent_jids: Sequence[str]) -> set[str]:
        return set((await self._admission.admit(Admission(agents=agent_jids))).online)

    async def clock_ms(self) -> int:
        with unavailable_on_redis_errors():
            seconds, micros = await self._client.time()
        return int(seconds) * 1000 + int(micros) // 1000

    async def prune(self, agent_jids: Sequence[str], before_ms: int) -> list[str]:
        if not agent_jids:
            return []
        hashes = {self._key(jid): jid for jid in agent_jids}
        with unavailable_on_redis_errors():
            emptied = await self._prune(keys=list(hashes), args=[before_ms])
        return [hashes[key] for key in emptied]

    async def generation(self) -> str:
        with unavailable_on_redis_errors():
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.set(keys.presence_generation(self._prefix), uuid.uuid4().hex, nx=True)
                pipe.get(keys.presence_generation(self._prefix))
                _, current = await pipe.execute()
        return str(current.decode() if isinstance(current, bytes) else current)

    async def forget(self, agent_jid: str) -> None:
        with unavailable_on_redis_errors():
            await self._client.delete(self._key(agent_jid))
