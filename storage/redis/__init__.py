"""Redis storage: agent presence and shared rate limits, and a routed batch's
questions about both in one round trip (:mod:`.admission`).

    stores = await connect("redis://127.0.0.1:6379/0", prefix="orgchat:biz.example.org",
                           timeout=2.0)

Every key starts with ``prefix + ":"``; only :mod:`.keys` knows the rest of
the key names.
"""

from __future__ import annotations

from storage.protocols import AdmissionStore, LimitStore, PresenceStore
from storage.redis.admission import RedisAdmission
from storage.redis.connection import Client, create_client
from storage.redis.limits import RedisLimitStore
from storage.redis.presence import RedisPresenceStore

__all__ = ["RedisStores", "connect"]


class RedisStores:
    """The Redis stores, sharing one client (and its connection pool)."""

    def __init__(self, client: Client, prefix: str) -> None:
        self._client = client
        admission = RedisAdmission(client, prefix)
        self.admission: AdmissionStore = admission
        self.presence: PresenceStore = RedisPresenceStore(client, prefix, admission)
        self.limits: LimitStore = RedisLimitStore(client, prefix, admission)

    async def close(self) -> None:
        await self._client.aclose()


# The timeout is each command's socket timeout, not a deadline for this call.
async def connect(url: str, *, prefix: str, timeout: float) -> RedisStores:  # noqa: ASYNC109
    """Create the stores. Does not contact Redis: calls raise Unavailable while it is down."""
    return RedisStores(create_client(url, timeout=timeout), prefix)
