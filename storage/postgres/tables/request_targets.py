"""The ``request_targets`` table: one row per company a request went to.

Targets keep the order in which the customer named the companies
(``position``). Their statuses only move forward (``TargetStatus.rank``); the
ranks are written into the SQL below from the model, never duplicated by
hand.

On the message path nothing here costs a round trip of its own: a routed
batch's archive statement (:mod:`storage.postgres.batch`) gives agents'
messages the thread and payload of the request they answer
(:func:`reply_cte`) and moves the statuses (:func:`advance_ctes`, the SQL of
:func:`advance` too). The newest open request of a conversation is found by
one subquery (:func:`_newest_open`) wherever it is needed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import asyncpg

from storage.models import RequestReply, RequestTarget, StatusChange, TargetStatus, TargetUpdate
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


def _newest_open(conversation: str) -> str:
    """A subquery (for LATERAL): the target (``request_id``, ``company_id``) and the
    ``public_id`` of the newest open request in the conversation whose id is the
    SQL expression ``conversation``; no row if it has none."""
    return f"""(
        SELECT open_t.request_id, open_t.company_id, open_r.public_id
          FROM request_targets open_t JOIN requests open_r ON open_r.id = open_t.request_id
         WHERE open_t.conversation_id = {conversation} AND open_r.state = 'open'
         ORDER BY open_r.id DESC
         LIMIT 1
    )"""


async def open_in(conn: Conn, conversation_ids: Sequence[int]) -> dict[int, str]:
    rows = await conn.fetch(
        f"""
        SELECT c.conversation_id, o.public_id
          FROM unnest($1::bigint[]) AS c(conversation_id)
         CROSS JOIN LATERAL {_newest_open("c.conversation_id")} o
        """,
        list(conversation_ids),
    )
    return {row["conversation_id"]: row["public_id"] for row in rows}


#: Parameters of :func:`reply_cte`, in the order of :func:`reply_arrays`.
REPLY_PARAMETERS = 4


def reply_cte(first: int) -> str:
    """``replies AS (SELECT ...)``: the agents' messages that join a request
    (:class:`storage.models.RequestReply`, parameters ``$first`` on), with the
    ``thread`` and ``payload`` they are archived with: those of the newest open
    request in their conversation. A message of a conversation without one is
    not there (archived as it is)."""
    stanza_ids, conversation_ids, heads, tails = (f"${first + i}" for i in range(REPLY_PARAMETERS))
    return f"""replies AS (
        SELECT u.stanza_id, o.public_id AS thread, u.head || o.public_id || u.tail AS payload
          FROM unnest({stanza_ids}::text[], {conversation_ids}::bigint[], {heads}::text[],
                      {tails}::text[]) AS u(stanza_id, conversation_id, head, tail)
         CROSS JOIN LATERAL {_newest_open("u.conversation_id")} o
    )"""


def reply_arrays(replies: Sequence[RequestReply]) -> tuple[list[object], ...]:
    """The replies as one list per parameter of :func:`reply_cte`."""
    return (
        [r.stanza_id for r in replies],
        [r.conversation_id for r in replies],
        [r.head for r in replies],
        [r.tail for r in replies],
    )


#: Parameters of :func:`advance_ctes`, in the order of :func:`advance_arrays`.
ADVANCE_PARAMETERS = 6


def advance_ctes(first: int, inserted: str) -> str:
    """``target_updates``, ``folded``, ``picked``, ``locked``, ``changed`` and
    ``moved``: the updates (parameters ``$first`` on) applied to the newest open
    request of their conversations; ``moved`` returns the status changes
    (``ord``, ``public_id``, ``customer_jid``, ``company_id``, ``status``).

    ``inserted`` names a CTE of the same statement returning the ``stanza_id``
    of the messages it archived: an update whose ``written`` message is not
    among them (a duplicate) is dropped.

    ``folded``: one update per conversation, deterministic whatever the batch
    holds. The first update of the highest rank wins (DECLINED and EXPIRED
    are equally final, so the first of them stays); if it is ANSWERED, its
    offer is the last one given with an ANSWERED update, so the status is
    the one applying the updates in order would give (only an offer
    overtaken in the same call by a DECLINED is not stored). ``ord``: where
    the conversation first appears, the order the changes come back in.
    ``picked``: the target of the newest open request of each. ``locked``:
    those rows locked, in a fixed order (no deadlock between two concurrent
    statements), with their current status, even if another transaction
    changed it since this statement began. The UPDATE moves a status only
    to a higher rank, or replaces an ANSWERED target's offer; ``moved``
    tells the two apart, and only moves are reported.
    """
    conversation_ids, statuses, ranks, offers, reasons, written = (
        f"${first + i}" for i in range(ADVANCE_PARAMETERS)
    )
    return f"""target_updates AS (
        SELECT * FROM unnest({conversation_ids}::bigint[], {statuses}::text[],
                             {ranks}::integer[], {offers}::text[], {reasons}::text[],
                             {written}::text[])
                 WITH ORDINALITY AS u(conversation_id, status, rank, offer, reason, written, ord)
         WHERE u.written IS NULL OR u.written IN (SELECT stanza_id FROM {inserted})
    ), folded AS (
        SELECT DISTINCT ON (u.conversation_id) u.conversation_id, u.status, u.rank, u.reason,
               CASE WHEN u.status = 'answered'
                    THEN (SELECT a.offer FROM target_updates a
                           WHERE a.conversation_id = u.conversation_id
                             AND a.status = 'answered' AND a.offer IS NOT NULL
                           ORDER BY a.ord DESC
                           LIMIT 1)
                    ELSE u.offer END AS offer,
               min(u.ord) OVER (PARTITION BY u.conversation_id) AS ord
          FROM target_updates u
         ORDER BY u.conversation_id, u.rank DESC, u.ord
    ), picked AS (
        SELECT f.ord, o.request_id, o.company_id
          FROM folded f CROSS JOIN LATERAL {_newest_open("f.conversation_id")} o
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
          FROM picked p JOIN folded u USING (ord) JOIN locked l USING (request_id, company_id)
         WHERE t.request_id = p.request_id AND t.company_id = p.company_id
           AND (u.rank > l.old_rank
                OR (u.status = 'answered' AND l.old_status = 'answered'
                    AND u.offer IS NOT NULL))
        RETURNING u.ord, t.request_id, t.company_id, t.status, u.rank > l.old_rank AS moved
    ), moved AS (
        SELECT c.ord, r.public_id, r.customer_jid, c.company_id, c.status
          FROM changed c JOIN requests r ON r.id = c.request_id
         WHERE c.moved
    )"""


def advance_arrays(updates: Sequence[TargetUpdate]) -> tuple[list[object], ...]:
    """The updates as one list per parameter of :func:`advance_ctes`."""
    return (
        [u.conversation_id for u in updates],
        [u.status.value for u in updates],
        [u.status.rank for u in updates],
        [u.offer for u in updates],
        [u.reason for u in updates],
        [u.written for u in updates],
    )


def changes(moved: Iterable[asyncpg.Record]) -> list[StatusChange]:
    """The status changes of :func:`advance_ctes`' ``moved`` rows, in their order."""
    return [
        StatusChange(
            public_id=row["public_id"],
            customer_jid=row["customer_jid"],
            company_id=row["company_id"],
            status=TargetStatus(row["status"]),
        )
        for row in sorted(moved, key=lambda row: row["ord"])
    ]


_ADVANCE = f"""
    WITH nothing AS (SELECT NULL::text AS stanza_id WHERE false),
    {advance_ctes(1, "nothing")}
    SELECT ord, public_id, customer_jid, company_id, status FROM moved
"""


async def advance(conn: Conn, updates: Sequence[TargetUpdate]) -> list[StatusChange]:
    """Apply the updates (see :func:`advance_ctes`); the moves, in their order.
    A routed batch does the same in its archive statement (see :mod:`..batch`)."""
    return changes(await conn.fetch(_ADVANCE, *advance_arrays(updates)))
