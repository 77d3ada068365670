"""The ``desk_conversations`` table: status and assignee of a conversation on the desk.

No row means open and unassigned: a row is created when a conversation's
state first changes (:func:`lock`). :func:`route` is the routing hot path:
one statement per batch, whatever its size, which also logs the reopenings
it makes in ``desk_events``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import asyncpg

from storage.errors import NotFound
from storage.models import (
    ConversationStatus,
    DeskConversation,
    DeskList,
    DeskRouting,
    DeskState,
)
from storage.postgres.pool import Conn
from storage.postgres.tables import conversations, messages

_CONVERSATION_COLUMNS = "c.id, c.company_id, c.customer_jid, c.token, c.customer_nick"


def from_row(conversation_id: int, row: asyncpg.Record | None) -> DeskState:
    """The state in ``row`` (None: no row, so open and unassigned)."""
    if row is None:
        return DeskState(conversation_id)
    return DeskState(conversation_id, ConversationStatus(row["status"]), row["assignee"])


#: Parameters of :func:`route_ctes`: the conversations whose assignees are
#: wanted, and those to reopen.
ROUTE_PARAMETERS = 2


def route_ctes(first: int) -> str:
    """``reopened AS (UPDATE ...), logged AS (INSERT ...), assigned AS (SELECT ...)``.

    Reopens the resolved conversations among ``$first + 1`` (a customer wrote;
    logged as the customer's REOPEN) and selects the assignees of the claimed
    ones among ``$first``. Data-modifying CTEs run whether or not the outer
    query reads them; ``assigned`` sees the rows as before the UPDATE, which
    only changes the status, so the assignees read are the current ones.
    """
    routed, reopen = (f"${first + i}" for i in range(ROUTE_PARAMETERS))
    return f"""reopened AS (
        UPDATE desk_conversations SET status = 'open', updated_at = now()
         WHERE conversation_id = ANY({reopen}::bigint[]) AND status = 'resolved'
        RETURNING conversation_id, assignee
    ), logged AS (
        INSERT INTO desk_events (conversation_id, kind, actor_kind, from_agent, to_agent)
        SELECT conversation_id, 'reopen', 'customer', assignee, assignee FROM reopened
    ), assigned AS (
        SELECT conversation_id, assignee FROM desk_conversations
         WHERE conversation_id = ANY({routed}::bigint[]) AND assignee IS NOT NULL
    )"""


def routing(assigned: Iterable[tuple[int, str]], reopened: Iterable[int]) -> DeskRouting:
    """The routing read by :func:`route_ctes`' ``assigned`` and ``reopened``."""
    return DeskRouting(assignees=dict(assigned), reopened=sorted(reopened))


_ROUTE = f"""
    WITH {route_ctes(1)}
    SELECT conversation_id, assignee, false AS reopened FROM assigned
    UNION ALL
    SELECT conversation_id, NULL, true FROM reopened
"""


async def route(conn: Conn, conversation_ids: Sequence[int], reopen: Sequence[int]) -> DeskRouting:
    """Reopen the resolved ones among ``reopen`` (logged as the customer's
    REOPEN); the assignees of the claimed ones among ``conversation_ids``.
    A routed batch does the same in its archive statement (see :mod:`..batch`)."""
    rows = await conn.fetch(_ROUTE, list(conversation_ids), list(reopen))
    return routing(
        ((r["conversation_id"], r["assignee"]) for r in rows if not r["reopened"]),
        (r["conversation_id"] for r in rows if r["reopened"]),
    )


async def state(conn: Conn, conversation_id: int) -> DeskState:
    row = await conn.fetchrow(
        "SELECT status, assignee FROM desk_conversations WHERE conversation_id = $1",
        conversation_id,
    )
    return from_row(conversation_id, row)


async def assignee(conn: Conn, conversation_id: int) -> str | None:
    found: str | None = await conn.fetchval(
        "SELECT assignee FROM desk_conversations WHERE conversation_id = $1", conversation_id
    )
    return found


async def lock(conn: Conn, conversation_id: int) -> DeskState:
    """The conversation's desk row, created if missing and locked until commit."""
    try:
        await conn.execute(
            "INSERT INTO desk_conversations (conversation_id) VALUES ($1) ON CONFLICT DO NOTHING",
            conversation_id,
        )
    except asyncpg.ForeignKeyViolationError as exc:
        raise NotFound(f"no conversation {conversation_id}") from exc
    row = await conn.fetchrow(
        "SELECT status, assignee FROM desk_conversations WHERE conversation_id = $1 FOR UPDATE",
        conversation_id,
    )
    return from_row(conversation_id, row)


async def update(conn: Conn, state: DeskState) -> None:
    """Write a locked row's new status and assignee."""
    await conn.execute(
        """
        UPDATE desk_conversations SET status = $2, assignee = $3, updated_at = now()
         WHERE conversation_id = $1
        """,
        state.conversation_id,
        state.status.value,
        state.assignee,
    )


async def of_company(
    conn: Conn, company_id: int, status: ConversationStatus | None, limit: int
) -> DeskList:
    """The company's conversations with that status (None: all), unassigned
    first, then by newest message; with their last message."""
    # One index lookup per conversation for its last message (messages
    # (conversation_id, id)); the desk lists one company's conversations.
    rows = await conn.fetch(
        f"""
        SELECT {_CONVERSATION_COLUMNS},
               coalesce(d.status, 'open') AS status, d.assignee,
               m.body AS last_body, m.ts AS last_ts, m.direction AS last_direction,
               count(*) OVER () AS total
          FROM conversations c
          LEFT JOIN desk_conversations d ON d.conversation_id = c.id
          LEFT JOIN LATERAL (
                SELECT body, ts, direction FROM messages
                 WHERE conversation_id = c.id ORDER BY id DESC LIMIT 1
          ) m ON true
         WHERE c.company_id = $1
           AND ($2::text IS NULL OR coalesce(d.status, 'open') = $2)
         ORDER BY d.assignee IS NOT NULL, m.ts DESC NULLS LAST, c.id DESC
         LIMIT $3
        """,
        company_id,
        None if status is None else status.value,
        limit,
    )
    items = [
        DeskConversation(
            conversation=conversations.from_row(r),
            status=ConversationStatus(r["status"]),
            assignee=r["assignee"],
            last_body=r["last_body"],
            last_ts=r["last_ts"],
            last_author=None
            if r["last_direction"] is None
            else messages.author(r["last_direction"]),
        )
        for r in rows
    ]
    return DeskList(items, rows[0]["total"] if rows else 0)
