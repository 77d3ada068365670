"""The ``desk_events`` table: the audit log of every change on the agent desk.

Rows are written by the desk's changes (:mod:`storage.postgres.desk`), and by
:func:`storage.postgres.tables.desk_conversations.route`, which logs the
reopenings a customer's message causes in the same statement.
"""

from __future__ import annotations

import asyncpg

from storage.models import ActorKind, DeskEvent, DeskEventKind
from storage.postgres.pool import Conn

COLUMNS = "id, conversation_id, kind, actor_kind, actor, from_agent, to_agent, ts, note_id"


def from_row(row: asyncpg.Record) -> DeskEvent:
    return DeskEvent(
        id=row["id"],
        conversation_id=row["conversation_id"],
        kind=DeskEventKind(row["kind"]),
        actor_kind=ActorKind(row["actor_kind"]),
        actor=row["actor"],
        from_agent=row["from_agent"],
        to_agent=row["to_agent"],
        ts=row["ts"],
        note_id=row["note_id"],
    )


async def insert(
    conn: Conn,
    conversation_id: int,
    kind: DeskEventKind,
    actor_kind: ActorKind,
    actor: str | None,
    from_agent: str | None,
    to_agent: str | None,
    note_id: int | None = None,
) -> None:
    await conn.execute(
        """
        INSERT INTO desk_events
               (conversation_id, kind, actor_kind, actor, from_agent, to_agent, note_id)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        """,
        conversation_id,
        kind.value,
        actor_kind.value,
        actor,
        from_agent,
        to_agent,
        note_id,
    )


async def of_conversation(conn: Conn, conversation_id: int) -> list[DeskEvent]:
    """Oldest first."""
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM desk_events WHERE conversation_id = $1 ORDER BY id",
        conversation_id,
    )
    return [from_row(r) for r in rows]
