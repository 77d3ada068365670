"""The ``push_subscriptions`` table: web push subscriptions, by address.

The endpoint identifies a subscription; an address may have several (one per
browser).
"""

from __future__ import annotations

import asyncpg

from storage.models import PushSubscription
from storage.postgres.pool import Conn

PUSH_COLUMNS = "id, address, endpoint, p256dh, auth"

# The endpoint identifies a subscription: subscribing again (new keys, or
# another account in the same browser) updates it in place.
_ADD_PUSH = """
    INSERT INTO push_subscriptions (address, endpoint, p256dh, auth)
    VALUES ($1, $2, $3, $4)
    ON CONFLICT (endpoint) DO UPDATE
       SET address = EXCLUDED.address, p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth,
           updated_at = now()
    RETURNING id
"""


def from_row(row: asyncpg.Record) -> PushSubscription:
    return PushSubscription(
        id=row["id"],
        address=row["address"],
        endpoint=row["endpoint"],
        p256dh=row["p256dh"],
        auth=row["auth"],
    )


async def upsert(conn: Conn, address: str, endpoint: str, p256dh: str, auth: str) -> int:
    """Store the subscription, or move a known endpoint to ``address`` with the new keys."""
    subscription_id: int = await conn.fetchval(_ADD_PUSH, address, endpoint, p256dh, auth)
    return subscription_id


async def of_address(conn: Conn, address: str) -> list[PushSubscription]:
    """Oldest first."""
    rows = await conn.fetch(
        f"SELECT {PUSH_COLUMNS} FROM push_subscriptions WHERE address = $1 ORDER BY id",
        address,
    )
    return [from_row(row) for row in rows]


async def delete(conn: Conn, subscription_id: int) -> None:
    await conn.execute("DELETE FROM push_subscriptions WHERE id = $1", subscription_id)
