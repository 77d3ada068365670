"""The ``requests`` table: one row per request to several companies.

Its targets are rows of ``request_targets`` (:mod:`.request_targets`).
Creators of one customer serialise on a transaction advisory lock
(:func:`lock_customer`), so that of two identical requests sent at once only
one is created and the other is found as its duplicate. The expiry sweep
takes due requests with FOR UPDATE SKIP LOCKED, like the other queues, so
concurrent sweepers share the work without returning a request twice; the
same statement expires their unanswered targets.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import asyncpg

from storage.errors import Conflict
from storage.models import NewRequest, Request, RequestState, RequestTarget, TargetStatus
from storage.postgres.pool import Conn

COLUMNS = (
    "id, public_id, customer_jid, subject, body, form, state, created_at, expires_at,"
    " closed_at, accepted_company_id"
)
#: First key of pg_advisory_xact_lock(int, int) while creating a customer's
#: requests ("orgq"); the second is hashtext(customer_jid). The two-key form
#: cannot collide with the single bigint keys of migrations and tests.
_CREATE_LOCK_CLASS = 0x6F726771


#: Targets that expire with their request: not answered, not final.
_UNANSWERED = [s.value for s in TargetStatus if s.rank < TargetStatus.ANSWERED.rank]


def from_row(row: asyncpg.Record, targets: Sequence[RequestTarget]) -> Request:
    return Request(
        id=row["id"],
        public_id=row["public_id"],
        customer_jid=row["customer_jid"],
        subject=row["subject"],
        body=row["body"],
        form=row["form"],
        state=RequestState(row["state"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        closed_at=row["closed_at"],
        accepted_company_id=row["accepted_company_id"],
        targets=tuple(targets),
    )


async def lock_customer(conn: Conn, customer_jid: str) -> None:
    """Serialise request creation per customer until the transaction ends.

    A hash collision only makes two customers wait for each other briefly.
    """
    await conn.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))", _CREATE_LOCK_CLASS, customer_jid
    )


async def find_duplicate(
    conn: Conn, customer_jid: str, dedup_key: str, since: dt.datetime
) -> asyncpg.Record | None:
    """The customer's newest request with this key created after ``since``."""
    return await conn.fetchrow(
        f"""
        SELECT {COLUMNS} FROM requests
         WHERE customer_jid = $1 AND dedup_key = $2 AND created_at > $3
         ORDER BY created_at DESC, id DESC
         LIMIT 1
        """,
        customer_jid,
        dedup_key,
        since,
    )


async def insert(conn: Conn, new: NewRequest) -> asyncpg.Record:
    """Insert an open request; Conflict if its public id exists."""
    try:
        [row] = await conn.fetch(
            f"""
            INSERT INTO requests (public_id, customer_jid, customer_nick, subject, body, form,
                                  dedup_key, state, created_at, expires_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9)
            RETURNING {COLUMNS}
            """,
            new.public_id,
            new.customer_jid,
            new.customer_nick,
            new.subject,
            new.body,
            new.form,
            new.dedup_key,
            new.created_at,
            new.expires_at,
        )
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"request {new.public_id!r} already exists") from exc
    return row


async def by_public_id(conn: Conn, public_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {COLUMNS} FROM requests WHERE public_id = $1", public_id)


async def lock(conn: Conn, public_id: str, customer_jid: str) -> asyncpg.Record | None:
    """The customer's request, locked until the transaction ends."""
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM requests WHERE public_id = $1 AND customer_jid = $2 FOR UPDATE",
        public_id,
        customer_jid,
    )


async def id_of(conn: Conn, public_id: str, customer_jid: str) -> int | None:
    found: int | None = await conn.fetchval(
        "SELECT id FROM requests WHERE public_id = $1 AND customer_jid = $2",
        public_id,
        customer_jid,
    )
    return found


# Newest first (id DESC), or oldest first for a page that ends before a
# request (or the last page), reversed by the caller; both walk the
# (customer_jid, id DESC) index.
_PAGE_WHERE = f"""
    SELECT {COLUMNS} FROM requests
     WHERE customer_jid = $1
       AND ($2::text IS NULL OR state = $2)
       AND ($3::bigint IS NULL OR id < $3)
       AND ($4::bigint IS NULL OR id > $4)
"""
_PAGE_NEWEST_FIRST = _PAGE_WHERE + " ORDER BY id DESC LIMIT $5"
_PAGE_OLDEST_FIRST = _PAGE_WHERE + " ORDER BY id LIMIT $5"


async def page(
    conn: Conn,
    customer_jid: str,
    state: RequestState | None,
    after_id: int | None,
    before_id: int | None,
    backwards: bool,
    limit: int,
) -> list[asyncpg.Record]:
    """Up to ``limit`` rows, newest first, older than ``after_id``, newer than ``before_id``.

    ``backwards``: the ones nearest ``before_id`` (the oldest ones if None),
    instead of the ones nearest ``after_id`` (the newest ones if None).
    """
    rows = await conn.fetch(
        _PAGE_OLDEST_FIRST if backwards else _PAGE_NEWEST_FIRST,
        customer_jid,
        None if state is None else state.value,
        after_id,
        before_id,
        limit,
    )
    if backwards:
        rows.reverse()
    return rows


async def count(
    conn: Conn, customer_jid: str, state: RequestState | None, newer_than: int | None
) -> tuple[int, int]:
    """(the customer's requests in ``state``, how many of them are newer than an id)."""
    [row] = await conn.fetch(
        """
        SELECT count(*) AS total, count(*) FILTER (WHERE id > $3) AS newer FROM requests
         WHERE customer_jid = $1 AND ($2::text IS NULL OR state = $2)
        """,
        customer_jid,
        None if state is None else state.value,
        newer_than,
    )
    return row["total"], row["newer"]


async def set_closed(
    conn: Conn, request_id: int, accepted_company_id: int | None
) -> asyncpg.Record:
    [row] = await conn.fetch(
        f"""
        UPDATE requests SET state = 'closed', closed_at = now(), accepted_company_id = $2
         WHERE id = $1
        RETURNING {COLUMNS}
        """,
        request_id,
        accepted_company_id,
    )
    return row


async def expire(conn: Conn, now: dt.datetime, limit: int) -> list[asyncpg.Record]:
    """Mark due open requests expired, and their unanswered targets; the requests' rows.

    SKIP LOCKED: requests another sweeper (or a close) holds are left to it.
    """
    return await conn.fetch(
        f"""
        WITH due AS (
            SELECT id FROM requests
             WHERE state = 'open' AND expires_at <= $1
             ORDER BY expires_at, id
             LIMIT $2
               FOR UPDATE SKIP LOCKED
        ), expired AS (
            UPDATE requests r SET state = 'expired' FROM due WHERE r.id = due.id
            RETURNING {", ".join(f"r.{column}" for column in COLUMNS.split(", "))}
        ), targets AS (
            UPDATE request_targets t SET status = 'expired', updated_at = now()
              FROM expired
             WHERE t.request_id = expired.id AND t.status = ANY($3::text[])
        )
        SELECT * FROM expired ORDER BY expires_at, id
        """,
        now,
        limit,
        _UNANSWERED,
    )
