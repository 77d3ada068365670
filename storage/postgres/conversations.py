"""ConversationStore on PostgreSQL, composed from :mod:`.tables.conversations`.

The SQL (and the token allocation) lives in the table module; this module
owns the connections and the LISTEN on deleted conversations.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence

from storage.models import Conversation
from storage.postgres.listen import listen
from storage.postgres.pool import Database
from storage.postgres.tables import conversations

#: Channel of the trigger on deleted conversations; the payload is the customer's JID.
DELETED_CHANNEL = "orgchat_conversations"


class PgConversationStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def watch_deleted(self, listener: Callable[[str | None], Awaitable[None]]) -> None:
        """See ConversationStore (migration 0006 notifies)."""
        await listen(self._db, DELETED_CHANNEL, listener)

    async def open_many(
        self, pairs: Sequence[tuple[int, str, str | None]], *, by_request: bool = False
    ) -> list[Conversation]:
        """See :func:`storage.postgres.tables.conversations.open_many`."""
        async with self._db.acquire() as conn:
            return await conversations.open_many(conn, pairs, by_request=by_request)

    async def find(self, company_id: int, customer_jid: str) -> Conversation | None:
        async with self._db.acquire() as conn:
            return await conversations.find(conn, company_id, customer_jid)

    async def of_company(self, company_id: int, token: str) -> Conversation | None:
        async with self._db.acquire() as conn:
            return await conversations.of_company(conn, company_id, token)

    async def by_ids(self, ids: Sequence[int]) -> list[Conversation]:
        if not ids:
            return []
        async with self._db.acquire() as conn:
            return await conversations.by_ids(conn, ids)

    async def active_customers(self, since: dt.datetime, limit: int) -> list[tuple[int, str]]:
        async with self._db.acquire() as conn:
            return await conversations.active_customers(conn, since, limit)
