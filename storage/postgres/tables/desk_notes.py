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


async def insert(
    conn: Conn, conversation_id: int, agent_jid: str, body: str, key: str | None
) -> tuple[Note, bool]:
    """The note and whether it is new: with a ``key`` already used in this
    conversation, the earlier note. Raises NotFound for an unknown conversation."""
    try:
        row = await conn.fetchrow(
            f"""
            INSERT INTO desk_notes (conversation_id, agent_jid, body, idempotency_key)
            VALUES ($1, $2, $3, $4)
            ON CONFLICT (conversation_id, idempotency_key)
                WHERE idempotency_key IS NOT NULL DO NOTHING
            RETURNING {COLUMNS}
            """,
            conversation_id,
            agent_jid,
            body,
            key,
        )
    except asyncpg.ForeignKeyViolationError as exc:
        raise NotFound(f"no conversation {conversation_id}") from exc
    if row is not None:
        return from_row(row), True
    earlier = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM desk_notes WHERE conversation_id = $1 AND idempotency_key = $2",
        conversation_id,
        key,
    )
    assert earlier is not None
    return from_row(earlier), False


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
