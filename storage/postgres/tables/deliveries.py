"""The ``deliveries`` table: archived batches handed to ejabberd, not yet confirmed.

A row lists the messages of one batch (or of one claim of pending messages)
that a component process is delivering. The process deletes the row once the
stanzas are written; a row whose process died grows stale and is taken over,
with FOR UPDATE SKIP LOCKED, by the sweep of any running process.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from storage.models import Delivery
from storage.postgres.pool import Conn
from storage.postgres.tables.messages import M_COLUMNS, from_row

# Stale rows are re-leased (since = now()) in the statement that takes them,
# so a sweeper that dies in turn leaves them stale again, never lost. A row
# whose messages were all deleted since (conversation removed) comes back
# with no messages, so the caller can confirm it away.
_TAKE_STALE = f"""
    WITH stale AS (
        SELECT id FROM deliveries
         WHERE since < now() - make_interval(secs => $1)
         ORDER BY id
         LIMIT $2
         FOR UPDATE SKIP LOCKED
    ), taken AS (
        UPDATE deliveries d SET since = now() FROM stale WHERE d.id = stale.id
        RETURNING d.id, d.message_ids
    )
    SELECT taken.id AS delivery_id, {M_COLUMNS}
      FROM taken LEFT JOIN messages m ON m.id = ANY (taken.message_ids)
     ORDER BY taken.id, m.id
"""


def deliveries_from_rows(rows: Sequence[asyncpg.Record]) -> list[Delivery]:
    """Group (delivery_id, message columns...) rows, keeping their order."""
    grouped: dict[int, Delivery] = {}
    for row in rows:
        delivery = grouped.setdefault(row["delivery_id"], Delivery(row["delivery_id"], []))
        if row["id"] is not None:
            delivery.messages.append(from_row(row))
    return list(grouped.values())


async def take_stale(conn: Conn, older_than_s: float, limit: int) -> list[Delivery]:
    return deliveries_from_rows(await conn.fetch(_TAKE_STALE, older_than_s, limit))


async def delete(conn: Conn, delivery_ids: Sequence[int]) -> None:
    await conn.execute("DELETE FROM deliveries WHERE id = ANY($1::bigint[])", list(delivery_ids))
