"""Redis outages: Unavailable while down, recovery without a restart."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import pytest

from storage import redis as redis_storage
from storage.errors import Unavailable
from storage.models import Limit, Once

if TYPE_CHECKING:
    from tests.conftest import TcpProxy

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


def every_call(stores: redis_storage.RedisStores) -> list[Callable[[], Awaitable[object]]]:
    return [
        lambda: stores.presence.update("a@localhost", "r", "available"),
        lambda: stores.presence.online_among(["a@localhost"]),
        lambda: stores.presence.forget("a@localhost"),
        stores.presence.clock_ms,
        lambda: stores.presence.prune(["a@localhost"], 0),
        lambda: stores.limits.hit(Limit.CUSTOMER_MESSAGES, ["s"], 1, 60),
        lambda: stores.limits.first_seen(Once.AWAY_REPLY, [("k",)], 60),
    ]


async def test_closed_port_is_unavailable(redis_prefix: str) -> None:
    stores = await redis_storage.connect("redis://127.0.0.1:1/0", prefix=redis_prefix, timeout=1.0)
    try:
        for call in every_call(stores):
            with pytest.raises(Unavailable):
                await call()
    finally:
        await stores.close()


async def test_down_then_back_without_restart(
    redis_proxy: TcpProxy, redis_proxy_url: str, redis_prefix: str
) -> None:
    await redis_proxy.stop()
    stores = await redis_storage.connect(redis_proxy_url, prefix=redis_prefix, timeout=1.0)
    try:
        with pytest.raises(Unavailable):
            await stores.limits.first_seen(Once.AWAY_REPLY, [("outage",)], 60)

        await redis_proxy.start()
        for call in every_call(stores):
            await call()

        await redis_proxy.stop()  # pooled connections are reset
        for call in every_call(stores):
            with pytest.raises(Unavailable):
                await call()

        await redis_proxy.start()
        for call in every_call(stores):
            await call()
    finally:
        await stores.close()
