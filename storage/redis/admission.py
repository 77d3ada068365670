"""A routed batch's questions to Redis in one round trip: one script call
counts its events against their rate limits, tells which of its agents are
online and makes its first-time marks (:class:`storage.protocols.AdmissionStore`).

It is the one implementation of each of the three: :mod:`.limits` and
:mod:`.presence` ask their single questions through it. Events of one
subject are counted in the order given, with one INCRBY per distinct counter
however many events it has in the batch: if a batch crosses a limit, its
first events pass and the rest do not, as if they had been counted one by
one.
"""

from __future__ import annotations

from storage.models import Admission, Admitted
from storage.redis import keys
from storage.redis.connection import Client, unavailable_on_redis_errors

# KEYS: the counters, then the agents' presence hashes, then the marks.
# ARGV[1]: how many counters, ARGV[2]: how many hashes, ARGV[3]: the marks'
# TTL (s); then a window (s) and a number of events per counter.
# Returns each counter's value after its increment, then per hash 1 if it
# exists (the agent is online: see presence.py), then per mark 1 if it was
# set now (the first time), 0 otherwise.
# A counter's window starts at its first event: the expiry is set when the
# INCRBY created it, and set again should it be missing (a counter left
# without one by an older version or a failed call), so it never outlives
# its window by much.
_ADMIT = """
local counters, hashes = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {}
for i = 1, counters do
    local key, n = KEYS[i], tonumber(ARGV[3 + 2 * i])
    local count = redis.call('INCRBY', key, n)
    if count == n or redis.call('TTL', key) == -1 then
        redis.call('EXPIRE', key, ARGV[2 + 2 * i])
    end
    out[i] = count
end
for i = counters + 1, counters + hashes do
    out[i] = redis.call('EXISTS', KEYS[i])
end
for i = counters + hashes + 1, #KEYS do
    out[i] = redis.call('SET', KEYS[i], 1, 'NX', 'EX', ARGV[3]) and 1 or 0
end
return out
"""


class RedisAdmission:
    def __init__(self, client: Client, prefix: str) -> None:
        self._prefix = prefix
        # EVALSHA, loading the script again if Redis answers NOSCRIPT
        # (restarted, or SCRIPT FLUSH).
        self._admit = client.register_script(_ADMIT)

    async def admit(self, admission: Admission) -> Admitted:
        if not admission:
            return Admitted(allowed=tuple([] for _ in admission.hits))
        prefix = self._prefix
        counted = [
            [keys.limit(prefix, hits.window_s, hits.kind, s) for s in hits.subjects]
            for hits in admission.hits
        ]
        # Events per distinct counter, and its window.
        events: dict[str, list[int]] = {}
        for hits, counters in zip(admission.hits, counted, strict=True):
            for key in counters:
                events.setdefault(key, [hits.window_s, 0])[1] += 1
        hashes = [keys.presence(prefix, jid) for jid in admission.agents]
        marks = admission.marks
        marked = [keys.seen(prefix, marks.kind, key) for key in marks.keys] if marks else []
        args = [len(events), len(hashes), marks.ttl_s if marks else 0]
        for window_s, n in events.values():
            args += (window_s, n)
        with unavailable_on_redis_errors():
            replies = await self._admit(keys=[*events, *hashes, *marked], args=args)
        # Each counter's value before this batch, then counted up event by event.
        counts = {
            key: int(count) - n
            for (key, (_, n)), count in zip(events.items(), replies, strict=False)
        }
        allowed = []
        for hits, counters in zip(admission.hits, counted, strict=True):
            verdicts = []
            for key in counters:
                counts[key] += 1
                verdicts.append(counts[key] <= hits.limit)
            allowed.append(verdicts)
        found = replies[len(events) : len(events) + len(hashes)]
        return Admitted(
            allowed=tuple(allowed),
            online=frozenset(jid for jid, n in zip(admission.agents, found, strict=True) if n),
            first=[bool(n) for n in replies[len(events) + len(hashes) :]],
        )
