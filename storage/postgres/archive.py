"""The ArchiveStore: messages.py (the archive) and deliveries.py (what is being delivered)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from storage.errors import NotFound
from storage.models import (
    ArchivedBatch,
    ArchivePage,
    ArchiveResult,
    Delivery,
    NewMessage,
)
from storage.postgres import deliveries, messages
from storage.postgres.pool import Conn, Database


class PgArchiveStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def append_batch(
        self, batch: Sequence[NewMessage], confirmed: Sequence[int] = ()
    ) -> ArchivedBatch:
        """Archive a batch; see ArchiveStore. Raises NotFound for an unknown conversation."""
        if not batch:
            await self.confirm(confirmed)
            return ArchivedBatch([], None)
        async with self._db.acquire() as conn:
            inserted, delivery_id = await messages.insert_batch(conn, batch, confirmed)
            results: list[ArchiveResult | None] = []
            skipped: list[int] = []
            for index, message in enumerate(batch):
                if message.stanza_id in inserted:
                    # discard: should a stanza-id repeat in the batch, only its
                    # first occurrence was inserted.
                    inserted.discard(message.stanza_id)
                    results.append(ArchiveResult(stanza_id=message.stanza_id, duplicate=False))
                else:
                    results.append(None)
                    skipped.append(index)
            if skipped:
                originals = await messages.first_copies(conn, [batch[i] for i in skipped])
                for index, stanza_id in zip(skipped, originals, strict=True):
                    results[index] = ArchiveResult(stanza_id=stanza_id, duplicate=True)
        return ArchivedBatch([r for r in results if r is not None], delivery_id)

    async def claim_pending(self, company_ids: Sequence[int], limit: int) -> Delivery | None:
        if not company_ids:
            return None
        async with self._db.acquire() as conn:
            return await messages.claim_pending(conn, company_ids, limit)

    async def claim_unconfirmed(self, older_than_s: float, limit: int) -> list[Delivery]:
        async with self._db.acquire() as conn:
            return await deliveries.take_stale(conn, older_than_s, limit)

    async def confirm(self, delivery_ids: Sequence[int]) -> None:
        if not delivery_ids:
            return
        async with self._db.acquire() as conn:
            await deliveries.delete(conn, delivery_ids)

    async def requeue(self, stanza_ids: Sequence[str]) -> None:
        if not stanza_ids:
            return
        async with self._db.acquire() as conn:
            await messages.mark_pending(conn, stanza_ids)

    async def page(
        self,
        conversation_id: int,
        *,
        start: dt.datetime | None,
        end: dt.datetime | None,
        after: str | None,
        before: str | None,
        limit: int,
    ) -> ArchivePage:
        async with self._db.acquire() as conn:
            after_id = await self._id(conn, conversation_id, after) if after else None
            before_id = await self._id(conn, conversation_id, before) if before else None
            found, complete, count = await messages.page(
                conn,
                conversation_id,
                start,
                end,
                after_id,
                before_id,
                backwards=before is not None,
                limit=limit,
            )
        return ArchivePage(found, complete, count)

    @staticmethod
    async def _id(conn: Conn, conversation_id: int, stanza_id: str) -> int:
        found = await messages.id_of(conn, conversation_id, stanza_id)
        if found is None:
            raise NotFound(f"no message {stanza_id!r} in this archive")
        return found
