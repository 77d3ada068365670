"""The ``notify_seen`` table: what each party of a conversation read on XMPP.

A mark only moves forward. :func:`unseen` reads the messages a party has
not been told about: after its seen mark here and after the channel's
notified mark in ``notify_sent`` (:mod:`.notify_sent`).
"""

from __future__ import annotations

from collections.abc import Sequence

from storage.models import ArchivedMessage, Channel, Party
from storage.postgres.pool import Conn
from storage.postgres.tables import messages

# $1 conversation, $2 direction, $3 party, $4 channel, $5 limit. Newest first
# here (the caller reverses): both walk the messages (conversation_id, id) index.
_UNSEEN = f"""
    SELECT {messages.COLUMNS} FROM messages
     WHERE conversation_id = $1 AND direction = $2
       AND id > greatest(
           coalesce((SELECT seen_message_id FROM notify_seen
                      WHERE conversation_id = $1 AND party = $3), 0),
           coalesce((SELECT notified_id FROM notify_sent
                      WHERE conversation_id = $1 AND party = $3 AND channel = $4), 0))
     ORDER BY id DESC
     LIMIT $5
"""

# max(id) per conversation walks the messages (conversation_id, id) index
# backwards; a conversation without messages (or deleted) has nothing to mark.
# DISTINCT: ON CONFLICT DO UPDATE cannot touch one row twice; ORDER BY: one
# lock order. The last WHERE spares a write when the mark would not move.
_MARK_SEEN = """
    INSERT INTO notify_seen (conversation_id, party, seen_message_id)
    SELECT k.conversation_id, k.party, last.id
      FROM (SELECT DISTINCT conversation_id, party
              FROM unnest($1::bigint[], $2::text[]) AS u(conversation_id, party)) k
      CROSS JOIN LATERAL (
          SELECT max(m.id) AS id FROM messages m WHERE m.conversation_id = k.conversation_id
      ) last
     WHERE last.id IS NOT NULL
     ORDER BY k.conversation_id, k.party
    ON CONFLICT (conversation_id, party) DO UPDATE
       SET seen_message_id = EXCLUDED.seen_message_id, updated_at = now()
     WHERE notify_seen.seen_message_id < EXCLUDED.seen_message_id
"""


async def unseen(
    conn: Conn, conversation_id: int, party: Party, channel: Channel, limit: int
) -> list[ArchivedMessage]:
    """The newest ``limit`` messages of the party's incoming direction that are
    after its seen mark and the channel's notified mark, oldest first."""
    rows = await conn.fetch(
        _UNSEEN,
        conversation_id,
        messages.direction(party.other),
        party.value,
        channel.value,
        limit,
    )
    return [messages.from_row(row) for row in reversed(rows)]


async def mark_seen(conn: Conn, marks: Sequence[tuple[int, Party]]) -> None:
    """One statement; conversations without messages are skipped.

    Raises asyncpg.ForeignKeyViolationError for a conversation deleted while
    the statement ran (running it again skips it).
    """
    await conn.execute(
        _MARK_SEEN,
        [conversation_id for conversation_id, _ in marks],
        [party.value for _, party in marks],
    )
