"""The ``requests`` and ``request_targets`` tables: requests to several companies.

A request is one ``requests`` row and one ``request_targets`` row per
company it went to, in the order the customer named them (``position``).
Creating a request also opens the companies' conversations with the customer
(:func:`storage.postgres.conversations.open_many`) and archives the request
there as an incoming message (:func:`storage.postgres.messages.insert_delivered`),
all in one transaction. Creators of one customer serialise on a transaction
advisory lock, so that of two identical requests sent at once only one is
created and the other is found as its duplicate.

Statuses of targets only move forward (``TargetStatus.rank``); the ranks are
written into the SQL below from the model, never duplicated by hand. The
expiry sweep takes due requests with FOR UPDATE SKIP LOCKED, like the other
queues, so concurrent sweepers share the work without returning a request
twice.
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
    RequestTarget,
    StatusChange,
    TargetStatus,
    TargetUpdate,
)
from storage.postgres import conversations, messages
from storage.postgres.pool import Conn, Database

COLUMNS = (
    "id, public_id, customer_jid, subject, body, form, state, created_at, expires_at,"
    " closed_at, accepted_company_id"
)
TARGET_COLUMNS = "request_id, company_id, conversation_id, status, updated_at, offer, reason"

#: First key of pg_advisory_xact_lock(int, int) while creating a customer's
#: requests ("orgq"); the second is hashtext(customer_jid). The two-key form
#: cannot collide with the single bigint keys of migrations and tests.
_CREATE_LOCK_CLASS = 0x6F726771


def _rank(column: str) -> str:
    """SQL giving the rank of the TargetStatus in ``column`` (from the model)."""
    cases = " ".join(f"WHEN '{status.value}' THEN {status.rank}" for status in TargetStatus)
    return f"(CASE {column} {cases} END)"


#: Targets that expire with their request: not answered, not final.
_UNANSWERED = [s.value for s in TargetStatus if s.rank < TargetStatus.ANSWERED.rank]


def target_from_row(row: asyncpg.Record) -> RequestTarget:
    return RequestTarget(
        company_id=row["company_id"],
        conversation_id=row["conversation_id"],
        status=TargetStatus(row["status"]),
        updated_at=row["updated_at"],
        offer=row["offer"],
        reason=row["reason"],
    )


def from_row(row: asyncpg.Record, targets: Sequence[RequestTarget]) -> Request:
    return Request(
        id=row["id"],
        public_id=row["public_id"],
        customer_jid=row["customer_jid"],
        subject=row["subject"],
        body=row["body"],
        form=row["form"],
        state=RequestState(row["state"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        closed_at=row["closed_at"],
        accepted_company_id=row["accepted_company_id"],
        targets=tuple(targets),
    )


# -- SQL ------------------------------------------------------------------------


async def lock_customer(conn: Conn, customer_jid: str) -> None:
    """Serialise request creation per customer until the transaction ends.

    A hash collision only makes two customers wait for each other briefly.
    """
    await conn.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))", _CREATE_LOCK_CLASS, customer_jid
    )


async def find_duplicate(
    conn: Conn, customer_jid: str, dedup_key: str, since: dt.datetime
) -> asyncpg.Record | None:
    """The customer's newest request with this key created after ``since``."""
    return await conn.fetchrow(
        f"""
        SELECT {COLUMNS} FROM requests
         WHERE customer_jid = $1 AND dedup_key = $2 AND created_at > $3
         ORDER BY created_at DESC, id DESC
         LIMIT 1
        """,
        customer_jid,
        dedup_key,
        since,
    )


async def insert(conn: Conn, new: NewRequest) -> asyncpg.Record:
    """Insert an open request; Conflict if its public id exists."""
    try:
        [row] = await conn.fetch(
            f"""
            INSERT INTO requests (public_id, customer_jid, customer_nick, subject, body, form,
                                  dedup_key, state, created_at, expires_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9)
            RETURNING {COLUMNS}
            """,
            new.public_id,
            new.customer_jid,
            new.customer_nick,
            new.subject,
            new.body,
            new.form,
            new.dedup_key,
            new.created_at,
            new.expires_at,
        )
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"request {new.public_id!r} already exists") from exc
    return row


async def insert_targets(
    conn: Conn,
    request_id: int,
    targets: Sequence[tuple[int, int, int]],
    updated_at: dt.datetime,
) -> list[RequestTarget]:
    """Insert (company_id, conversation_id, message_id) targets as SENT, in order."""
    rows = await conn.fetch(
        f"""
        INSERT INTO request_targets (request_id, company_id, conversation_id, message_id,
                                     position, status, updated_at)
        SELECT $1, company_id, conversation_id, message_id, position - 1, 'sent', $5
          FROM unnest($2::bigint[], $3::bigint[], $4::bigint[])
               WITH ORDINALITY AS t(company_id, conversation_id, message_id, position)
        RETURNING {TARGET_COLUMNS}, position
        """,
        request_id,
        [company_id for company_id, _, _ in targets],
        [conversation_id for _, conversation_id, _ in targets],
        [message_id for _, _, message_id in targets],
        updated_at,
    )
    return [target_from_row(row) for row in sorted(rows, key=lambda row: row["position"])]


async def targets_of(conn: Conn, request_ids: Sequence[int]) -> dict[int, list[RequestTarget]]:
    """The targets of these requests, each list in the order given at creation."""
    rows = await conn.fetch(
        f"""
        SELECT {TARGET_COLUMNS} FROM request_targets
         WHERE request_id = ANY($1::bigint[])
         ORDER BY request_id, position
        """,
        list(request_ids),
    )
    found: dict[int, list[RequestTarget]] = {}
    for row in rows:
        found.setdefault(row["request_id"], []).append(target_from_row(row))
    return found


async def with_targets(conn: Conn, rows: Sequence[asyncpg.Record]) -> list[Request]:
    """Requests from their rows, with their targets (one query for all)."""
    if not rows:
        return []
    targets = await targets_of(conn, [row["id"] for row in rows])
    return [from_row(row, targets.get(row["id"], ())) for row in rows]


async def by_public_id(conn: Conn, public_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {COLUMNS} FROM requests WHERE public_id = $1", public_id)


async def lock(conn: Conn, public_id: str, customer_jid: str) -> asyncpg.Record | None:
    """The customer's request, locked until the transaction ends."""
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM requests WHERE public_id = $1 AND customer_jid = $2 FOR UPDATE",
        public_id,
        customer_jid,
    )


async def id_of(conn: Conn, public_id: str, customer_jid: str) -> int | None:
    found: int | None = await conn.fetchval(
        "SELECT id FROM requests WHERE public_id = $1 AND customer_jid = $2",
        public_id,
        customer_jid,
    )
    return found


# Newest first (id DESC), or oldest first for a page that ends before a
# request (or the last page), reversed by the caller; both walk the
# (customer_jid, id DESC) index.
_PAGE_WHERE = f"""
    SELECT {COLUMNS} FROM requests
     WHERE customer_jid = $1
       AND ($2::text IS NULL OR state = $2)
       AND ($3::bigint IS NULL OR id < $3)
       AND ($4::bigint IS NULL OR id > $4)
"""
_PAGE_NEWEST_FIRST = _PAGE_WHERE + " ORDER BY id DESC LIMIT $5"
_PAGE_OLDEST_FIRST = _PAGE_WHERE + " ORDER BY id LIMIT $5"


async def page(
    conn: Conn,
    customer_jid: str,
    state: RequestState | None,
    after_id: int | None,
    before_id: int | None,
    backwards: bool,
    limit: int,
) -> list[asyncpg.Record]:
    """Up to ``limit`` rows, newest first, older than ``after_id``, newer than ``before_id``.

    ``backwards``: the ones nearest ``before_id`` (the oldest ones if None),
    instead of the ones nearest ``after_id`` (the newest ones if None).
    """
    rows = await conn.fetch(
        _PAGE_OLDEST_FIRST if backwards else _PAGE_NEWEST_FIRST,
        customer_jid,
        None if state is None else state.value,
        after_id,
        before_id,
        limit,
    )
    if backwards:
        rows.reverse()
    return rows


async def count(
    conn: Conn, customer_jid: str, state: RequestState | None, newer_than: int | None
) -> tuple[int, int]:
    """(the customer's requests in ``state``, how many of them are newer than an id)."""
    [row] = await conn.fetch(
        """
        SELECT count(*) AS total, count(*) FILTER (WHERE id > $3) AS newer FROM requests
         WHERE customer_jid = $1 AND ($2::text IS NULL OR state = $2)
        """,
        customer_jid,
        None if state is None else state.value,
        newer_than,
    )
    return row["total"], row["newer"]


async def open_in(conn: Conn, conversation_ids: Sequence[int]) -> dict[int, str]:
    rows = await conn.fetch(
        """
        SELECT DISTINCT ON (t.conversation_id) t.conversation_id, r.public_id
          FROM request_targets t JOIN requests r ON r.id = t.request_id
         WHERE t.conversation_id = ANY($1::bigint[]) AND r.state = 'open'
         ORDER BY t.conversation_id, r.id DESC
        """,
        list(conversation_ids),
    )
    return {row["conversation_id"]: row["public_id"] for row in rows}


# One update per conversation (see fold()). `picked`: the target of the
# newest open request in each conversation. `locked`: those rows locked, in a
# fixed order (no deadlock between two concurrent calls), with their current
# status, even if another transaction changed it since this statement began.
# The UPDATE moves a status only to a higher rank, or replaces an ANSWERED
# target's offer; `moved` tells the two apart, and only moves are reported.
_ADVANCE = f"""
    WITH u AS (
        SELECT * FROM unnest($1::bigint[], $2::text[], $3::integer[], $4::text[], $5::text[])
                 WITH ORDINALITY AS u(conversation_id, status, rank, offer, reason, ord)
    ), picked AS (
        SELECT DISTINCT ON (u.ord) u.ord, t.request_id, t.company_id
          FROM u JOIN request_targets t ON t.conversation_id = u.conversation_id
                 JOIN requests r ON r.id = t.request_id
         WHERE r.state = 'open'
         ORDER BY u.ord, r.id DESC
    ), locked AS (
        SELECT t.request_id, t.company_id, t.status AS old_status,
               {_rank("t.status")} AS old_rank
          FROM request_targets t JOIN picked p USING (request_id, company_id)
         ORDER BY t.request_id, t.company_id
           FOR UPDATE OF t
    ), changed AS (
        UPDATE request_targets t
           SET status = CASE WHEN u.rank > l.old_rank THEN u.status ELSE t.status END,
               offer = CASE WHEN u.status = 'answered' AND u.offer IS NOT NULL
                            THEN u.offer ELSE t.offer END,
               reason = CASE WHEN u.status = 'declined' THEN u.reason ELSE t.reason END,
               updated_at = now()
          FROM picked p JOIN u USING (ord) JOIN locked l USING (request_id, company_id)
         WHERE t.request_id = p.request_id AND t.company_id = p.company_id
           AND (u.rank > l.old_rank
                OR (u.status = 'answered' AND l.old_status = 'answered'
                    AND u.offer IS NOT NULL))
        RETURNING u.ord, t.request_id, t.company_id, t.status, u.rank > l.old_rank AS moved
    )
    SELECT r.public_id, r.customer_jid, c.company_id, c.status
      FROM changed c JOIN requests r ON r.id = c.request_id
     WHERE c.moved
     ORDER BY c.ord
"""


def fold(updates: Sequence[TargetUpdate]) -> list[TargetUpdate]:
    """One update per conversation, deterministic whatever the batch holds.

    The first update of the highest rank wins (DECLINED and EXPIRED are
    equally final, so the first of them stays); an ANSWERED update with an
    offer that follows the winning ANSWERED one replaces its offer. The
    status is thus the one applying the updates in order would give; only
    an offer overtaken in the same call by a DECLINED is not stored. The
    result keeps the order in which conversations first appear.
    """
    folded: dict[int, TargetUpdate] = {}
    for update in updates:
        best = folded.get(update.conversation_id)
        if best is None or update.status.rank > best.status.rank:
            folded[update.conversation_id] = update
        elif (
            update.status is TargetStatus.ANSWERED
            and best.status is TargetStatus.ANSWERED
            and update.offer is not None
        ):
            folded[update.conversation_id] = dataclasses.replace(best, offer=update.offer)
    return list(folded.values())


async def advance(conn: Conn, updates: Sequence[TargetUpdate]) -> list[StatusChange]:
    """Apply folded updates (at most one per conversation); the moves, in their order."""
    rows = await conn.fetch(
        _ADVANCE,
        [u.conversation_id for u in updates],
        [u.status.value for u in updates],
        [u.status.rank for u in updates],
        [u.offer for u in updates],
        [u.reason for u in updates],
    )
    return [
        StatusChange(
            public_id=row["public_id"],
            customer_jid=row["customer_jid"],
            company_id=row["company_id"],
            status=TargetStatus(row["status"]),
        )
        for row in rows
    ]


async def set_closed(
    conn: Conn, request_id: int, accepted_company_id: int | None
) -> asyncpg.Record:
    [row] = await conn.fetch(
        f"""
        UPDATE requests SET state = 'closed', closed_at = now(), accepted_company_id = $2
         WHERE id = $1
        RETURNING {COLUMNS}
        """,
        request_id,
        accepted_company_id,
    )
    return row


async def expire(conn: Conn, now: dt.datetime, limit: int) -> list[asyncpg.Record]:
    """Mark due open requests expired, and their unanswered targets; the requests' rows.

    SKIP LOCKED: requests another sweeper (or a close) holds are left to it.
    """
    return await conn.fetch(
        f"""
        WITH due AS (
            SELECT id FROM requests
             WHERE state = 'open' AND expires_at <= $1
             ORDER BY expires_at, id
             LIMIT $2
               FOR UPDATE SKIP LOCKED
        ), expired AS (
            UPDATE requests r SET state = 'expired' FROM due WHERE r.id = due.id
            RETURNING {", ".join(f"r.{column}" for column in COLUMNS.split(", "))}
        ), targets AS (
            UPDATE request_targets t SET status = 'expired', updated_at = now()
              FROM expired
             WHERE t.request_id = expired.id AND t.status = ANY($3::text[])
        )
        SELECT * FROM expired ORDER BY expires_at, id
        """,
        now,
        limit,
        _UNANSWERED,
    )


# -- the store ------------------------------------------------------------------


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
            await lock_customer(conn, new.customer_jid)
            if duplicate_window_s > 0:
                since = new.created_at - dt.timedelta(seconds=duplicate_window_s)
                earlier = await find_duplicate(conn, new.customer_jid, new.dedup_key, since)
                if earlier is not None:
                    [request] = await with_targets(conn, [earlier])
                    return CreatedRequest(request, duplicate=True, delivery=None)

            row = await insert(conn, new)
            opened = await conversations.open_many(
                conn,
                [
                    (company_id, new.customer_jid, new.customer_nick)
                    for company_id in new.company_ids
                ],
            )
            delivery = await messages.insert_delivered(
                conn,
                [
                    NewMessage(
                        conversation_id=conversation.id,
                        author=Party.CUSTOMER,
                        sender_jid=new.customer_jid,
                        body=new.message_body,
                        stanza_id=stanza_id,
                        client_id=None,
                        client_key=None,
                        pending=False,
                        ts=new.created_at,
                        thread=new.public_id,
                        payload=new.message_payload,
                    )
                    for conversation, stanza_id in zip(opened, new.stanza_ids, strict=True)
                ],
            )
            targets = await insert_targets(
                conn,
                row["id"],
                [
                    (conversation.company_id, conversation.id, message.id)
                    for conversation, message in zip(opened, delivery.messages, strict=True)
                ],
                new.created_at,
            )
        return CreatedRequest(from_row(row, targets), duplicate=False, delivery=delivery)

    async def get(self, public_id: str) -> Request | None:
        async with self._db.acquire() as conn:
            row = await by_public_id(conn, public_id)
            if row is None:
                return None
            [request] = await with_targets(conn, [row])
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
            rows = await page(
                conn,
                customer_jid,
                state,
                after_id,
                before_id,
                backwards=before is not None,
                limit=max(limit, 0),
            )
            total, newer = await count(conn, customer_jid, state, rows[0]["id"] if rows else None)
            found = await with_targets(conn, rows)
        return RequestPage(requests=found, count=total, first_index=newer if rows else 0)

    @staticmethod
    async def _id(conn: Conn, customer_jid: str, public_id: str) -> int:
        found = await id_of(conn, public_id, customer_jid)
        if found is None:
            raise NotFound(f"no request {public_id!r} of this customer")
        return found

    async def open_in(self, conversation_ids: Sequence[int]) -> dict[int, str]:
        if not conversation_ids:
            return {}
        async with self._db.acquire() as conn:
            return await open_in(conn, conversation_ids)

    async def advance(self, updates: Sequence[TargetUpdate]) -> list[StatusChange]:
        """See RequestStore.advance.

        Several updates for one conversation in one call are folded first
        (:func:`fold`): the highest rank wins, the first given among equal
        ranks, and the last offer of the winning ANSWERED updates is kept; at
        most one change per target is reported (its final status). Changes
        come back in the order their conversations first appear.
        """
        if not updates:
            return []
        async with self._db.acquire() as conn:
            return await advance(conn, fold(updates))

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
            row = await lock(conn, public_id, customer_jid)
            if row is None:
                raise NotFound(f"no request {public_id!r} of this customer")
            targets = (await targets_of(conn, [row["id"]])).get(row["id"], [])
            by_company = {target.company_id: target for target in targets}
            if accepted_company_id is not None and accepted_company_id not in by_company:
                raise NotFound(f"company {accepted_company_id} is not a target of {public_id!r}")
            if row["state"] != RequestState.OPEN.value:
                raise Conflict(f"request {public_id!r} is {row['state']}, not open")
            strangers = [n.company_id for n in notices if n.company_id not in by_company]
            if strangers:
                raise NotFound(f"companies {strangers} are not targets of {public_id!r}")

            row = await set_closed(conn, row["id"], accepted_company_id)
            delivery: Delivery | None = None
            if notices:
                delivery = await messages.insert_delivered(
                    conn,
                    [
                        NewMessage(
                            conversation_id=by_company[notice.company_id].conversation_id,
                            author=Party.CUSTOMER,
                            sender_jid=customer_jid,
                            body=notice.body,
                            stanza_id=notice.stanza_id,
                            client_id=None,
                            client_key=None,
                            pending=False,
                            ts=row["closed_at"],
                            thread=public_id,
                            payload=notice.payload,
                        )
                        for notice in notices
                    ],
                )
        return from_row(row, targets), delivery

    async def expire_due(self, now: dt.datetime, limit: int) -> list[Request]:
        """See RequestStore.expire_due; oldest expiry first."""
        async with self._db.transaction() as conn:
            rows = await expire(conn, now, limit)
            return await with_targets(conn, rows)
