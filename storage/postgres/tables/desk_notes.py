"""The ``desk_notes`` table: agents' internal notes on a conversation."""

from __future__ import annotations

import asyncpg

from storage.errors import NotFound
from storage.models import Note
from storage.postgres.pool import Conn

COLUMNS = "id, conversation_id, agent_jid, body, ts"


def from_row(row: asyncpg.Record) -> Note:
    return Note(
        id=row["id"],
        conversation_id=row["conversation_id"],
        agent_jid=row["agent_jid"],
        body=row["body"],
        ts=row["ts"],
    )


async def insert(conn: Conn, conversation_id: int, agent_jid: str, body: str) -> Note:
    """Raises NotFound for an unknown conversation."""
    try:
        row = await conn.fetchrow(
            f"""
            INSERT INTO desk_notes (conversation_id, agent_jid, body)
            VALUES ($1, $2, $3) RETURNING {COLUMNS}
            """,
            conversation_id,
            agent_jid,
            body,
        )
    except asyncpg.ForeignKeyViolationError as exc:
        raise NotFound(f"no conversation {conversation_id}") from exc
    assert row is not None
    return from_row(row)


async def newest(conn: Conn, conversation_id: int, limit: int) -> list[Note]:
    """The newest ``limit`` notes, oldest first."""
    rows = await conn.fetch(
        f"""
        SELECT * FROM (
            SELECT {COLUMNS} FROM desk_notes WHERE conversation_id = $1
             ORDER BY id DESC LIMIT $2
        ) newest ORDER BY id
        """,
        conversation_id,
        limit,
    )
    return [from_row(r) for r in rows]
