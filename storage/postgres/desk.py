"""DeskStore on PostgreSQL: the agent desk's tables (migration 0008).

Composed from one table module each:

* ``desk_conversations`` (:mod:`.tables.desk_conversations`): status and
  assignee of a conversation; no row means open and unassigned.
* ``desk_events`` (:mod:`.tables.desk_events`): the audit log of every desk
  change.
* ``desk_notes`` (:mod:`.tables.desk_notes`): internal notes.
* ``canned_replies`` (:mod:`.tables.canned_replies`): prepared answers.
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

from storage.errors import NotFound
from storage.models import (
    ActorKind,
    CannedReply,
    ConversationStatus,
    DeskChange,
    DeskEvent,
    DeskEventKind,
    DeskList,
    DeskRouting,
    DeskState,
    Note,
)
from storage.postgres.pool import Database
from storage.postgres.tables import canned_replies, desk_conversations, desk_events, desk_notes
from storage.protocols import DeskDecision


class PgDeskStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- routing (hot path) ------------------------------------------------------

    async def route(self, conversation_ids: Sequence[int], reopen: Sequence[int]) -> DeskRouting:
        async with self._db.acquire() as conn:
            return await desk_conversations.route(conn, conversation_ids, reopen)

    # -- conversation state ----------------------------------------------------------

    async def state(self, conversation_id: int) -> DeskState:
        async with self._db.acquire() as conn:
            return await desk_conversations.state(conn, conversation_id)

    async def change(
        self, conversation_id: int, decide: DeskDecision
    ) -> tuple[DeskState, DeskState]:
        refusal: Exception | None = None
        change: DeskChange | None = None
        async with self._db.transaction() as conn:
            before = after = await desk_conversations.lock(conn, conversation_id)
            try:
                change = decide(before)
            except Exception as exc:
                # Raised once out of the connection's context, so that a refusal
                # that happens to be an OSError is not taken for an outage.
                refusal = exc
            if change is not None:
                after = DeskState(conversation_id, change.status, change.assignee)
                await desk_conversations.update(conn, after)
                await desk_events.insert(
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
        return before, after

    async def conversations(
        self, company_id: int, status: ConversationStatus | None, limit: int
    ) -> DeskList:
        async with self._db.acquire() as conn:
            return await desk_conversations.of_company(conn, company_id, status, limit)

    # -- notes and the audit log -------------------------------------------------------

    async def add_note(
        self,
        conversation_id: int,
        agent_jid: str,
        body: str,
        *,
        by_operator: bool = False,
        key: str | None = None,
    ) -> Note:
        async with self._db.transaction() as conn:
            note, new = await desk_notes.insert(conn, conversation_id, agent_jid, body, key)
            if not new:
                return note
            assignee = await desk_conversations.assignee(conn, conversation_id)
            await desk_events.insert(
                conn,
                conversation_id,
                DeskEventKind.NOTE,
                ActorKind.OPERATOR if by_operator else ActorKind.AGENT,
                None if by_operator else agent_jid,
                assignee,
                assignee,
                note_id=note.id,
            )
        return note

    async def notes(self, conversation_id: int, limit: int) -> list[Note]:
        async with self._db.acquire() as conn:
            return await desk_notes.newest(conn, conversation_id, limit)

    async def events(self, conversation_id: int) -> list[DeskEvent]:
        async with self._db.acquire() as conn:
            return await desk_events.of_conversation(conn, conversation_id)

    # -- canned replies ----------------------------------------------------------------

    async def canned(self, company_id: int) -> list[CannedReply]:
        async with self._db.acquire() as conn:
            return await canned_replies.of_company(conn, company_id)

    async def add_canned(self, company_id: int, title: str, body: str) -> CannedReply:
        async with self._db.acquire() as conn:
            return await canned_replies.insert(conn, company_id, title, body)

    async def remove_canned(self, company_id: int, reply_id: int) -> None:
        async with self._db.acquire() as conn:
            if not await canned_replies.delete(conn, company_id, reply_id):
                raise NotFound(f"no canned reply {reply_id}")
