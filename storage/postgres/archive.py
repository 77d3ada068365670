"""ArchiveStore on PostgreSQL, composed from its table modules.

:mod:`.batch` (a routed batch in one statement), :mod:`.tables.messages`
(the archive) and :mod:`.tables.message_pages` (its XEP-0313 pages),
:mod:`.tables.deliveries` (what is being delivered), and
:mod:`.tables.companies` for the retention periods.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from storage.models import (
    ArchivedBatch,
    ArchivedMessage,
    ArchivePage,
    ArchiveQuery,
    ArchiveResult,
    BatchExtras,
    Delivery,
    NewMessage,
    Pruned,
)
from storage.postgres import batch as statement
from storage.postgres.pool import Database
from storage.postgres.tables import companies, deliveries, message_pages, messages


class PgArchiveStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        #: The batch loop's connection: it archives one batch after another.
        self._batches = db.held()

    async def append_batch(
        self,
        batch: Sequence[NewMessage],
        confirmed: Sequence[int] = (),
        extras: BatchExtras | None = None,
    ) -> ArchivedBatch:
        """Archive a batch; see ArchiveStore. Raises NotFound for an unknown conversation."""
        extras = extras or BatchExtras()
        if not batch and not extras:
            await self.confirm(confirmed)
            return ArchivedBatch([], None)
        async with self._batches.acquire() as conn:
            archived = await statement.archive(conn, batch, confirmed, extras)
            inserted = {result.stanza_id for result in archived.results}
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
        return dataclasses.replace(archived, results=[r for r in results if r is not None])

    async def claim_pending(self, company_ids: Sequence[int], limit: int) -> Delivery | None:
        if not company_ids:
            return None
        async with self._db.acquire() as conn:
            return await messages.claim_pending(conn, company_ids, limit)

    async def count_pending(self) -> int:
        async with self._db.acquire() as conn:
            return await messages.count_pending(conn)

    async def claim_unconfirmed(self, older_than_s: float, limit: int) -> list[Delivery]:
        async with self._db.acquire() as conn:
            return await deliveries.take_stale(conn, older_than_s, limit)

    async def confirm(self, delivery_ids: Sequence[int]) -> None:
        if not delivery_ids:
            return
        async with self._batches.acquire() as conn:
            await deliveries.delete(conn, delivery_ids)

    async def requeue(self, stanza_ids: Sequence[str]) -> None:
        if not stanza_ids:
            return
        async with self._db.acquire() as conn:
            await messages.mark_pending(conn, stanza_ids)

    async def page(self, query: ArchiveQuery) -> ArchivePage:
        async with self._db.acquire() as conn:
            found, complete, count = await message_pages.page(conn, query)
        return ArchivePage(found, complete, count)

    async def ends(self, query: ArchiveQuery) -> tuple[ArchivedMessage, ArchivedMessage] | None:
        async with self._db.acquire() as conn:
            return await message_pages.ends(conn, query)

    async def messages_of(
        self, conversation_id: int, *, after: int, limit: int
    ) -> list[ArchivedMessage]:
        async with self._db.acquire() as conn:
            return await messages.of_conversation(conn, conversation_id, after, limit)

    async def prune_expired(self, now: dt.datetime, batch_size: int) -> list[Pruned]:
        """See ArchiveStore. One statement per batch, each committed on its own."""
        async with self._db.acquire() as conn:
            targets = await companies.with_retention(conn)
        pruned = []
        for company in targets:
            assert company.retention_days is not None
            cutoff = now - dt.timedelta(days=company.retention_days)
            total = 0
            async with self._db.acquire() as conn:
                boundary = await messages.expiry_boundary(conn, company.id, cutoff)
                after = 0
                while True:
                    deleted, after = await messages.delete_before(
                        conn, company.id, after, boundary, batch_size
                    )
                    total += deleted
                    if deleted < batch_size:
                        break
            pruned.append(Pruned(company.slug, company.retention_days, total))
        return pruned
