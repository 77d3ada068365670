"""DeskStore on PostgreSQL: the agent desk's tables (migration 0008).

* ``desk_conversations``: status and assignee of a conversation; no row means
  open and unassigned.
* ``desk_events``: the audit log of every desk change.
* ``desk_notes``: internal notes. ``canned_replies``: prepared answers.
* The company settings admins change on the desk (hours, time zone, away
  message, reaction window) are columns of ``companies``: DirectoryStore
  writes them.

:meth:`PgDeskStore.change` runs the caller's decision inside the transaction
that holds the conversation's desk row locked, so the rules (who may claim,
resolve, transfer) live in the component and two agents acting at once are
serialised. :meth:`PgDeskStore.route` is the routing hot path: one statement
per batch, whatever its size.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from storage.errors import Conflict, NotFound
from storage.models import (
    ActorKind,
    CannedReply,
    ConversationStatus,
    DeskChange,
    DeskConversation,
    DeskEvent,
    DeskEventKind,
    DeskList,
    DeskRouting,
    DeskState,
    Note,
)
from storage.postgres import conversations as conversations_table
from storage.postgres import messages
from storage.postgres.pool import Conn, Database
from storage.protocols import DeskDecision

_EVENT_COLUMNS = "id, conversation_id, kind, actor_kind, actor, from_agent, to_agent, ts, note_id"
_NOTE_COLUMNS = "id, conversation_id, agent_jid, body, ts"
_CANNED_COLUMNS = "id, company_id, title, body"
_CONVERSATION_COLUMNS = "c.id, c.company_id, c.customer_jid, c.token, c.customer_nick"


def _state(conversation_id: int, row: asyncpg.Record | None) -> DeskState:
    if row is None:
        return DeskState(conversation_id)
    return DeskState(conversation_id, ConversationStatus(row["status"]), row["assignee"])


def _event(row: asyncpg.Record) -> DeskEvent:
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


def _note(row: asyncpg.Record) -> Note:
    return Note(
        id=row["id"],
        conversation_id=row["conversation_id"],
        agent_jid=row["agent_jid"],
        body=row["body"],
        ts=row["ts"],
    )


def _canned(row: asyncpg.Record) -> CannedReply:
    return CannedReply(
        id=row["id"], company_id=row["company_id"], title=row["title"], body=row["body"]
    )


async def _record(
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


async def _lock(conn: Conn, conversation_id: int) -> DeskState:
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
    return _state(conversation_id, row)


class PgDeskStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- routing (hot path) ------------------------------------------------------

    async def route(self, conversation_ids: Sequence[int], reopen: Sequence[int]) -> DeskRouting:
        # Data-modifying CTEs run whether or not the outer query reads them; the
        # outer SELECT sees the rows as before the UPDATE, which only changes
        # the status, so the assignees read are the current ones.
        async with self._db.acquire() as conn:
            rows = await conn.fetch(
                """
                WITH reopened AS (
                    UPDATE desk_conversations SET status = 'open', updated_at = now()
                     WHERE conversation_id = ANY($2::bigint[]) AND status = 'resolved'
                    RETURNING conversation_id, assignee
                ), logged AS (
                    INSERT INTO desk_events
                           (conversation_id, kind, actor_kind, from_agent, to_agent)
                    SELECT conversation_id, 'reopen', 'customer', assignee, assignee
                      FROM reopened
                )
                SELECT conversation_id, assignee, false AS reopened
                  FROM desk_conversations
                 WHERE conversation_id = ANY($1::bigint[]) AND assignee IS NOT NULL
                UNION ALL
                SELECT conversation_id, NULL, true FROM reopened
                """,
                list(conversation_ids),
                list(reopen),
            )
        return DeskRouting(
            assignees={r["conversation_id"]: r["assignee"] for r in rows if not r["reopened"]},
            reopened=sorted(r["conversation_id"] for r in rows if r["reopened"]),
        )

    # -- conversation state ----------------------------------------------------------

    async def state(self, conversation_id: int) -> DeskState:
        async with self._db.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT status, assignee FROM desk_conversations WHERE conversation_id = $1",
                conversation_id,
            )
        return _state(conversation_id, row)

    async def change(
        self, conversation_id: int, decide: DeskDecision
    ) -> tuple[DeskState, DeskState]:
        refusal: Exception | None = None
        change: DeskChange | None = None
        async with self._db.transaction() as conn:
            before = await _lock(conn, conversation_id)
            try:
                change = decide(before)
            except Exception as exc:
                # Raised once out of the connection's context, so that a refusal
                # that happens to be an OSError is not taken for an outage.
                refusal = exc
            if change is not None:
                await conn.execute(
                    """
                    UPDATE desk_conversations SET status = $2, assignee = $3, updated_at = now()
                     WHERE conversation_id = $1
                    """,
                    conversation_id,
                    change.status.value,
                    change.assignee,
                )
                await _record(
                    conn,
                    conversation_id,
                    change.kind,
                    change.actor_kind,
                    change.actor,
                    before.assignee,
                    change.assignee,
                )
        if refusal is not None:
            raise refusal
        if change is None:
            return before, before
        return before, DeskState(conversation_id, change.status, change.assignee)

    async def conversations(
        self, company_id: int, status: ConversationStatus | None, limit: int
    ) -> DeskList:
        # One index lookup per conversation for its last message (messages
        # (conversation_id, id)); the desk lists one company's conversations.
        async with self._db.acquire() as conn:
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
                conversation=conversations_table.from_row(r),
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

    # -- notes and the audit log -------------------------------------------------------

    async def add_note(
        self, conversation_id: int, agent_jid: str, body: str, *, by_operator: bool = False
    ) -> Note:
        async with self._db.transaction() as conn:
            try:
                row = await conn.fetchrow(
                    f"""
                    INSERT INTO desk_notes (conversation_id, agent_jid, body)
                    VALUES ($1, $2, $3) RETURNING {_NOTE_COLUMNS}
                    """,
                    conversation_id,
                    agent_jid,
                    body,
                )
            except asyncpg.ForeignKeyViolationError as exc:
                raise NotFound(f"no conversation {conversation_id}") from exc
            assert row is not None
            assignee = await conn.fetchval(
                "SELECT assignee FROM desk_conversations WHERE conversation_id = $1",
                conversation_id,
            )
            await _record(
                conn,
                conversation_id,
                DeskEventKind.NOTE,
                ActorKind.OPERATOR if by_operator else ActorKind.AGENT,
                None if by_operator else agent_jid,
                assignee,
                assignee,
                note_id=row["id"],
            )
        return _note(row)

    async def notes(self, conversation_id: int, limit: int) -> list[Note]:
        async with self._db.acquire() as conn:
            rows = await conn.fetch(
                f"""
                SELECT * FROM (
                    SELECT {_NOTE_COLUMNS} FROM desk_notes WHERE conversation_id = $1
                     ORDER BY id DESC LIMIT $2
                ) newest ORDER BY id
                """,
                conversation_id,
                limit,
            )
        return [_note(r) for r in rows]

    async def events(self, conversation_id: int) -> list[DeskEvent]:
        async with self._db.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_EVENT_COLUMNS} FROM desk_events WHERE conversation_id = $1 ORDER BY id",
                conversation_id,
            )
        return [_event(r) for r in rows]

    # -- canned replies ----------------------------------------------------------------

    async def canned(self, company_id: int) -> list[CannedReply]:
        async with self._db.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_CANNED_COLUMNS} FROM canned_replies WHERE company_id = $1 "
                "ORDER BY title, id",
                company_id,
            )
        return [_canned(r) for r in rows]

    async def add_canned(self, company_id: int, title: str, body: str) -> CannedReply:
        async with self._db.acquire() as conn:
            try:
                row = await conn.fetchrow(
                    f"""
                    INSERT INTO canned_replies (company_id, title, body) VALUES ($1, $2, $3)
                    RETURNING {_CANNED_COLUMNS}
                    """,
                    company_id,
                    title,
                    body,
                )
            except asyncpg.UniqueViolationError as exc:
                raise Conflict(f"a canned reply titled {title!r} exists already") from exc
            except asyncpg.ForeignKeyViolationError as exc:
                raise NotFound(f"no company {company_id}") from exc
        assert row is not None
        return _canned(row)

    async def remove_canned(self, company_id: int, reply_id: int) -> None:
        async with self._db.acquire() as conn:
            status = await conn.execute(
                "DELETE FROM canned_replies WHERE company_id = $1 AND id = $2",
                company_id,
                reply_id,
            )
        if status == "DELETE 0":
            raise NotFound(f"no canned reply {reply_id}")
