"""Forgetting one customer: everything orgchat stores about them (GDPR).

One code path for ``orgchat forget`` (:mod:`.cli`) and for the expiry of
abandoned guest accounts (:mod:`component.features.guests`): the PostgreSQL
rows (:meth:`storage.protocols.CustomerStore.forget`), then the Redis
entries. Forgetting twice is harmless: the second time deletes nothing.
"""

from __future__ import annotations

import dataclasses

from storage import postgres
from storage import redis as redis_store
from storage.errors import Unavailable
from storage.models import Forgotten


@dataclasses.dataclass(frozen=True, slots=True)
class ForgetReport:
    """What forgetting one customer deleted."""

    stored: Forgotten
    #: Redis, in words: what was deleted, or why nothing was.
    redis: str


async def forget_customer(
    pg: postgres.PostgresStores, rd: redis_store.RedisStores, jid: str
) -> ForgetReport:
    """Delete what is stored about the customer ``jid`` (a bare JID).

    PostgreSQL must be reachable (Unavailable otherwise, nothing deleted);
    Redis need not be: its counters expire by themselves, which the report says.
    """
    stored = await pg.customers.forget(jid)
    snapshot = await pg.directory.snapshot()
    is_agent = any(agent.jid == jid for agent in snapshot.agents)
    return ForgetReport(stored, await _forget_in_redis(rd, jid, is_agent))


async def _forget_in_redis(rd: redis_store.RedisStores, jid: str, is_agent: bool) -> str:
    """Drop the JID's rate-limit counters (and presence, unless an agent): a summary."""
    try:
        counters = await rd.limits.forget(jid)
        if not is_agent:
            await rd.presence.forget(jid)
    except Unavailable as exc:
        return f"not reachable ({exc}); its counters expire by themselves"
    presence = "" if is_agent else " and the presence entry"
    return f"{counters} rate-limit counters{presence} deleted"
