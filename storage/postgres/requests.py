"""RequestStore on PostgreSQL: requests to several companies.

Composed from :mod:`.tables.requests` and :mod:`.tables.request_targets`.
Creating a request also opens the companies' conversations with the
customer (:func:`storage.postgres.tables.conversations.open_many`) and
archives the request there as an incoming message
(:func:`storage.postgres.tables.messages.insert_delivered`), all in one
transaction, under the customer's creation lock
(:func:`storage.postgres.tables.requests.lock_customer`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

import asyncpg

from storage.errors import Conflict, NotFound
from storage.models import (
    CreatedRequest,
    Delivery,
    NewMessage,
    NewRequest,
    Notice,
    Party,
    Request,
    RequestPage,
    RequestState,
    StatusChange,
    TargetUpdate,
)
from storage.postgres.pool import Conn, Database
from storage.postgres.tables import conversations, messages, request_targets, requests


def request_message(
    conversation_id: int,
    customer_jid: str,
    public_id: str,
    body: str,
    payload: str,
    stanza_id: str,
    ts: dt.datetime,
) -> NewMessage:
    """A message the component archives on the customer's behalf: a request in one
    company's conversation, or its closing notice (threaded by the request's id)."""
    return NewMessage(
        conversation_id=conversation_id,
        author=Party.CUSTOMER,
        sender_jid=customer_jid,
        body=body,
        stanza_id=stanza_id,
        client_id=None,
        client_key=None,
        pending=False,
        ts=ts,
        thread=public_id,
        payload=payload,
    )


def fan_out(new: NewRequest, conversation_ids: Sequence[int]) -> list[NewMessage]:
    """The request's message in each company's conversation (in ``new.company_ids``' order)."""
    copies = new.copies or tuple(() for _id in new.company_ids)
    return [
        dataclasses.replace(
            request_message(
                conversation_id,
                new.customer_jid,
                new.public_id,
                new.message_body,
                new.message_payload,
                stanza_id,
                new.created_at,
            ),
            copies=own,
        )
        for conversation_id, stanza_id, own in zip(
            conversation_ids, new.stanza_ids, copies, strict=True
        )
    ]


async def _with_targets(conn: Conn, rows: Sequence[asyncpg.Record]) -> list[Request]:
    """Requests from their rows, with their targets (one query for all)."""
    if not rows:
        return []
    targets = await request_targets.targets_of(conn, [row["id"] for row in rows])
    return [requests.from_row(row, targets.get(row["id"], ())) for row in rows]


class PgRequestStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, new: NewRequest, duplicate_window_s: float) -> CreatedRequest:
        """See RequestStore.create.

        The duplicate window ends at ``new.created_at``. Raises ValueError
        for a request without companies, with a company twice, or without
        one stanza-id per company; NotFound for an unknown company.
        """
        if not new.company_ids:
            raise ValueError("a request needs at least one company")
        if len(set(new.company_ids)) != len(new.company_ids):
            raise ValueError("a request names each company once")
        if len(new.stanza_ids) != len(new.company_ids):
            raise ValueError("a request needs one stanza-id per company")

        async with self._db.transaction() as conn:
            await requests.lock_customer(conn, new.customer_jid)
            if duplicate_window_s > 0:
                since = new.created_at - dt.timedelta(seconds=duplicate_window_s)
                earlier = await requests.find_duplicate(
                    conn, new.customer_jid, new.dedup_key, since
                )
                if earlier is not None:
                    [request] = await _with_targets(conn, [earlier])
                    return CreatedRequest(request, duplicate=True, delivery=None)

            row = await requests.insert(conn, new)
            opened = await conversations.open_many(
                conn,
                [
                    (company_id, new.customer_jid, new.customer_nick)
                    for company_id in new.company_ids
                ],
                by_request=True,
            )
            delivery = await messages.insert_delivered(
                conn,
                fan_out(new, [conversation.id for conversation in opened]),
            )
            targets = await request_targets.insert_targets(
                conn,
                row["id"],
                [
                    (conversation.company_id, conversation.id, message.id)
                    for conversation, message in zip(opened, delivery.messages, strict=True)
                ],
                new.created_at,
            )
        return CreatedRequest(requests.from_row(row, targets), duplicate=False, delivery=delivery)

    async def get(self, public_id: str) -> Request | None:
        async with self._db.acquire() as conn:
            row = await requests.by_public_id(conn, public_id)
            if row is None:
                return None
            [request] = await _with_targets(conn, [row])
        return request

    async def list_for(
        self,
        customer_jid: str,
        *,
        state: RequestState | None,
        after: str | None,
        before: str | None,
        limit: int,
    ) -> RequestPage:
        """See RequestStore.list_for; ``first_index`` is 0 for an empty page."""
        # One snapshot: the page and its count agree even while requests are created.
        async with (
            self._db.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            after_id = await self._id(conn, customer_jid, after) if after else None
            before_id = await self._id(conn, customer_jid, before) if before else None
            rows = await requests.page(
                conn,
                customer_jid,
                state,
                after_id,
                before_id,
                backwards=before is not None,
                limit=max(limit, 0),
            )
            total, newer = await requests.count(
                conn, customer_jid, state, rows[0]["id"] if rows else None
            )
            found = await _with_targets(conn, rows)
        return RequestPage(requests=found, count=total, first_index=newer if rows else 0)

    @staticmethod
    async def _id(conn: Conn, customer_jid: str, public_id: str) -> int:
        found = await requests.id_of(conn, public_id, customer_jid)
        if found is None:
            raise NotFound(f"no request {public_id!r} of this customer")
        return found

    async def open_in(self, conversation_ids: Sequence[int]) -> dict[int, str]:
        if not conversation_ids:
            return {}
        async with self._db.acquire() as conn:
            return await request_targets.open_in(conn, conversation_ids)

    async def advance(self, updates: Sequence[TargetUpdate]) -> list[StatusChange]:
        """See RequestStore.advance.

        Several updates for one conversation in one call are folded first
        (:func:`.tables.request_targets.advance_ctes`): the highest rank wins,
        the first given among equal ranks, and the last offer of the winning
        ANSWERED updates is kept; at most one change per target is reported
        (its final status). Changes come back in the order their
        conversations first appear. A routed batch moves statuses in its own
        statement (ArchiveStore.append_batch), in the same way.
        """
        if not updates:
            return []
        async with self._db.acquire() as conn:
            return await request_targets.advance(conn, updates)

    async def close(
        self,
        public_id: str,
        customer_jid: str,
        accepted_company_id: int | None,
        notices: Sequence[Notice],
    ) -> tuple[Request, Delivery | None]:
        """See RequestStore.close. A notice for a company that is not a target
        raises NotFound too; the notices' time is the closing time."""
        async with self._db.transaction() as conn:
            row = await requests.lock(conn, public_id, customer_jid)
            if row is None:
                raise NotFound(f"no request {public_id!r} of this customer")
            targets = (await request_targets.targets_of(conn, [row["id"]])).get(row["id"], [])
            by_company = {target.company_id: target for target in targets}
            if accepted_company_id is not None and accepted_company_id not in by_company:
                raise NotFound(f"company {accepted_company_id} is not a target of {public_id!r}")
            if row["state"] != RequestState.OPEN.value:
                raise Conflict(f"request {public_id!r} is {row['state']}, not open")
            strangers = [n.company_id for n in notices if n.company_id not in by_company]
            if strangers:
                raise NotFound(f"companies {strangers} are not targets of {public_id!r}")

            row = await requests.set_closed(conn, row["id"], accepted_company_id)
            delivery: Delivery | None = None
            if notices:
                delivery = await messages.insert_delivered(
                    conn,
                    [
                        dataclasses.replace(
                            request_message(
                                by_company[notice.company_id].conversation_id,
                                customer_jid,
                                public_id,
                                notice.body,
                                notice.payload,
                                notice.stanza_id,
                                row["closed_at"],
                            ),
                            copies=notice.copies,
                        )
                        for notice in notices
                    ],
                )
        return requests.from_row(row, targets), delivery

    async def expire_due(self, now: dt.datetime, limit: int) -> list[Request]:
        """See RequestStore.expire_due; oldest expiry first."""
        async with self._db.transaction() as conn:
            rows = await requests.expire(conn, now, limit)
            return await _with_targets(conn, rows)
