"""The ``notify_seen`` table: what each party of a conversation read on XMPP.

A mark only moves forward. :func:`unseen` reads the messages a party has
not been told about: after its seen mark here and after the channel's
notified mark in ``notify_sent`` (:mod:`.notify_sent`).
"""

from __future__ import annotations

from collections.abc import Sequence

from storage.models import ArchivedMessage, Channel, Party, ReadMark
from storage.postgres import packed
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

#: Parameters of :func:`mark_cte`: conversation ids, parties, and the stanza-id
#: a mark depends on (see storage.models.ReadMark), one packed column each
#: (:mod:`storage.postgres.packed`).
_MARK_TYPES = ("bigint", "text", "text")
MARK_PARAMETERS = len(_MARK_TYPES)


def mark_cte(first: int, inserted: str) -> str:
    """``seen AS (INSERT ...)``: the read marks, parameters ``$first`` on.

    ``inserted`` names a CTE of the same statement returning the ``id``,
    ``stanza_id`` and ``conversation_id`` of the messages it archived: a mark
    whose ``written`` message is not among them (a duplicate) is skipped, and
    they count as read (the statement's snapshot does not see them in
    ``messages``). max(id) per conversation walks the messages
    (conversation_id, id) index backwards; a conversation without messages
    (or deleted) has nothing to mark. DISTINCT: ON CONFLICT DO UPDATE cannot
    touch one row twice; ORDER BY: one lock order. The last WHERE spares a
    write when the mark would not move.
    """
    return f"""seen AS (
        INSERT INTO notify_seen (conversation_id, party, seen_message_id)
        SELECT k.conversation_id, k.party, greatest(old.id, new.id)
          FROM (SELECT DISTINCT u.conversation_id, u.party
                  FROM unnest({packed.columns(first, _MARK_TYPES)})
                       AS u(conversation_id, party, written)
                 WHERE u.written IS NULL
                    OR u.written IN (SELECT stanza_id FROM {inserted})) k
          CROSS JOIN LATERAL (
              SELECT max(m.id) AS id FROM messages m WHERE m.conversation_id = k.conversation_id
          ) old
          CROSS JOIN LATERAL (
              SELECT max(i.id) AS id FROM {inserted} i WHERE i.conversation_id = k.conversation_id
          ) new
         WHERE coalesce(old.id, new.id) IS NOT NULL
         ORDER BY k.conversation_id, k.party
        ON CONFLICT (conversation_id, party) DO UPDATE
           SET seen_message_id = EXCLUDED.seen_message_id, updated_at = now()
         WHERE notify_seen.seen_message_id < EXCLUDED.seen_message_id
    )"""


def mark_columns(marks: Sequence[ReadMark]) -> tuple[str, ...]:
    """The marks, one packed column per parameter of :func:`mark_cte`."""
    return (
        packed.numbers([m.conversation_id for m in marks]),
        packed.texts([m.party.value for m in marks]),
        packed.texts([m.written for m in marks]),
    )


_MARK_SEEN = f"""
    WITH nothing AS (SELECT NULL::bigint AS id, NULL::text AS stanza_id,
                            NULL::bigint AS conversation_id WHERE false),
    {mark_cte(1, "nothing")}
    SELECT 1
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


async def mark_seen(conn: Conn, marks: Sequence[ReadMark]) -> None:
    """The marks alone (a batch's archive statement records its own, see
    :mod:`.messages`); conversations without messages are skipped.

    Raises asyncpg.ForeignKeyViolationError for a conversation deleted while
    the statement ran (running it again skips it).
    """
    await conn.execute(_MARK_SEEN, *mark_columns(marks))
