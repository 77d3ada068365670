"""The ``request_targets`` table: one row per company a request went to.

Targets keep the order in which the customer named the companies
(``position``). Their statuses only move forward (``TargetStatus.rank``); the
ranks are written into the SQL below from the model, never duplicated by
hand.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import asyncpg

from storage.models import RequestTarget, StatusChange, TargetStatus, TargetUpdate
from storage.postgres.pool import Conn

TARGET_COLUMNS = "request_id, company_id, conversation_id, status, updated_at, offer, reason"


def _rank(column: str) -> str:
    """SQL giving the rank of the TargetStatus in ``column`` (from the model)."""
    cases = " ".join(f"WHEN '{status.value}' THEN {status.rank}" for status in TargetStatus)
    return f"(CASE {column} {cases} END)"


def target_from_row(row: asyncpg.Record) -> RequestTarget:
    return RequestTarget(
        company_id=row["company_id"],
        conversation_id=row["conversation_id"],
        status=TargetStatus(row["status"]),
        updated_at=row["updated_at"],
        offer=row["offer"],
        reason=row["reason"],
    )


async def insert_targets(
    conn: Conn,
    request_id: int,
    targets: Sequence[tuple[int, int, int]],
    updated_at: dt.datetime,
) -> list[RequestTarget]:
    """Insert (company_id, conversation_id, message_id) targets as SENT, in order."""
    rows = await conn.fetch(
        f"""
        INSERT INTO request_targets (request_id, company_id, conversation_id, message_id,
                                     position, status, updated_at)
        SELECT $1, company_id, conversation_id, message_id, position - 1, 'sent', $5
          FROM unnest($2::bigint[], $3::bigint[], $4::bigint[])
               WITH ORDINALITY AS t(company_id, conversation_id, message_id, position)
        RETURNING {TARGET_COLUMNS}, position
        """,
        request_id,
        [company_id for company_id, _, _ in targets],
        [conversation_id for _, conversation_id, _ in targets],
        [message_id for _, _, message_id in targets],
        updated_at,
    )
    return [target_from_row(row) for row in sorted(rows, key=lambda row: row["position"])]


async def targets_of(conn: Conn, request_ids: Sequence[int]) -> dict[int, list[RequestTarget]]:
    """The targets of these requests, each list in the order given at creation."""
    rows = await conn.fetch(
        f"""
        SELECT {TARGET_COLUMNS} FROM request_targets
         WHERE request_id = ANY($1::bigint[])
         ORDER BY request_id, position
        """,
        list(request_ids),
    )
    found: dict[int, list[RequestTarget]] = {}
    for row in rows:
        found.setdefault(row["request_id"], []).append(target_from_row(row))
    return found


async def open_in(conn: Conn, conversation_ids: Sequence[int]) -> dict[int, str]:
    rows = await conn.fetch(
        """
        SELECT DISTINCT ON (t.conversation_id) t.conversation_id, r.public_id
          FROM request_targets t JOIN requests r ON r.id = t.request_id
         WHERE t.conversation_id = ANY($1::bigint[]) AND r.state = 'open'
         ORDER BY t.conversation_id, r.id DESC
        """,
        list(conversation_ids),
    )
    return {row["conversation_id"]: row["public_id"] for row in rows}


# One update per conversation (see fold()). `picked`: the target of the
# newest open request in each conversation. `locked`: those rows locked, in a
# fixed order (no deadlock between two concurrent calls), with their current
# status, even if another transaction changed it since this statement began.
# The UPDATE moves a status only to a higher rank, or replaces an ANSWERED
# target's offer; `moved` tells the two apart, and only moves are reported.
_ADVANCE = f"""
    WITH u AS (
        SELECT * FROM unnest($1::bigint[], $2::text[], $3::integer[], $4::text[], $5::text[])
                 WITH ORDINALITY AS u(conversation_id, status, rank, offer, reason, ord)
    ), picked AS (
        SELECT DISTINCT ON (u.ord) u.ord, t.request_id, t.company_id
          FROM u JOIN request_targets t ON t.conversation_id = u.conversation_id
                 JOIN requests r ON r.id = t.request_id
         WHERE r.state = 'open'
         ORDER BY u.ord, r.id DESC
    ), locked AS (
        SELECT t.request_id, t.company_id, t.status AS old_status,
               {_rank("t.status")} AS old_rank
          FROM request_targets t JOIN picked p USING (request_id, company_id)
         ORDER BY t.request_id, t.company_id
           FOR UPDATE OF t
    ), changed AS (
        UPDATE request_targets t
           SET status = CASE WHEN u.rank > l.old_rank THEN u.status ELSE t.status END,
               offer = CASE WHEN u.status = 'answered' AND u.offer IS NOT NULL
                            THEN u.offer ELSE t.offer END,
               reason = CASE WHEN u.status = 'declined' THEN u.reason ELSE t.reason END,
               updated_at = now()
          FROM picked p JOIN u USING (ord) JOIN locked l USING (request_id, company_id)
         WHERE t.request_id = p.request_id AND t.company_id = p.company_id
           AND (u.rank > l.old_rank
                OR (u.status = 'answered' AND l.old_status = 'answered'
                    AND u.offer IS NOT NULL))
        RETURNING u.ord, t.request_id, t.company_id, t.status, u.rank > l.old_rank AS moved
    )
    SELECT r.public_id, r.customer_jid, c.company_id, c.status
      FROM changed c JOIN requests r ON r.id = c.request_id
     WHERE c.moved
     ORDER BY c.ord
"""


async def advance(conn: Conn, updates: Sequence[TargetUpdate]) -> list[StatusChange]:
    """Apply folded updates (at most one per conversation); the moves, in their order."""
    rows = await conn.fetch(
        _ADVANCE,
        [u.conversation_id for u in updates],
        [u.status.value for u in updates],
        [u.status.rank for u in updates],
        [u.offer for u in updates],
        [u.reason for u in updates],
    )
    return [
        StatusChange(
            public_id=row["public_id"],
            customer_jid=row["customer_jid"],
            company_id=row["company_id"],
            status=TargetStatus(row["status"]),
        )
        for row in rows
    ]
