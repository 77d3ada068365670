"""The ``leases`` table: named leases that one process at a time holds.

A lease is taken by one statement: inserted if it was never taken, moved
forward if the last one has run out, left alone (no row returned) while
another process holds it. Row locks make two takers at the same moment
wait for each other, and the second one sees the first one's lease.
"""

from __future__ import annotations

from storage.postgres.pool import Conn

_TAKE = """
    INSERT INTO leases (name, held_until)
    VALUES ($1, now() + make_interval(secs => $2))
    ON CONFLICT (name) DO UPDATE SET held_until = EXCLUDED.held_until
     WHERE leases.held_until <= now()
    RETURNING name
"""


async def take(conn: Conn, name: str, seconds: float) -> bool:
    """Take the lease for ``seconds`` from now; False while another holds it."""
    return await conn.fetchval(_TAKE, name, float(seconds)) is not None
