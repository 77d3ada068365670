"""The ``conversations`` table: one row per (company, customer), with its opaque token.

The token is the customer-facing part of the conversation's address on the
agents' side, so it is random (``secrets``) and carries nothing of the
customer's JID. :func:`open_many` runs once per batch of incoming messages:
in the common case (every conversation exists, no new nick) it is one
read-only round trip and writes nothing. It also serves other stores inside
their own transactions (requests to several companies open their
conversations this way).

:func:`forget_customer` deletes a customer's conversations together with
everything else stored about them (GDPR), in one statement.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from collections.abc import Sequence

import asyncpg

from storage.errors import NotFound
from storage.models import Conversation, Forgotten
from storage.postgres.pool import Conn

COLUMNS = "id, company_id, customer_jid, token, customer_nick"

#: RFC 4648 base32 letters: case-insensitive, no 0/1/8/9 to confuse with O/I/B/g.
TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
TOKEN_LENGTH = 10  # 50 bits

#: Creating a batch retries rows whose token collided; with 50 random bits a
#: second round is already rare, a sixth means the generator is broken.
_INSERT_ROUNDS = 5

Key = tuple[int, str]  #: (company_id, customer_jid)


def new_token() -> str:
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))


def from_row(row: asyncpg.Record) -> Conversation:
    return Conversation(
        id=row["id"],
        company_id=row["company_id"],
        customer_jid=row["customer_jid"],
        token=row["token"],
        customer_nick=row["customer_nick"],
    )


def _by_key(rows: list[asyncpg.Record]) -> dict[Key, Conversation]:
    return {(row["company_id"], row["customer_jid"]): from_row(row) for row in rows}


async def find_many(conn: Conn, keys: Sequence[Key]) -> dict[Key, Conversation]:
    rows = await conn.fetch(
        f"""
        SELECT {COLUMNS}
          FROM unnest($1::bigint[], $2::text[]) AS k(company_id, customer_jid)
          JOIN conversations c USING (company_id, customer_jid)
        """,
        [company_id for company_id, _ in keys],
        [jid for _, jid in keys],
    )
    return _by_key(rows)


async def insert_new(
    conn: Conn, items: Sequence[tuple[int, str, str | None]], *, by_request: bool = False
) -> dict[Key, Conversation]:
    """Insert (company_id, customer_jid, nick) rows with fresh tokens.

    Rows that conflict (created meanwhile by another process, or a token
    collision) are skipped and missing from the result. Raises NotFound if a
    company does not exist.
    """
    try:
        rows = await conn.fetch(
            f"""
            INSERT INTO conversations (company_id, customer_jid, token, customer_nick, by_request)
            SELECT *, $5::boolean FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[])
            ON CONFLICT DO NOTHING
            RETURNING {COLUMNS}
            """,
            [company_id for company_id, _, _ in items],
            [jid for _, jid, _ in items],
            [new_token() for _ in items],
            [nick for _, _, nick in items],
            by_request,
        )
    except asyncpg.ForeignKeyViolationError as exc:
        raise NotFound(f"company does not exist: {exc.detail}") from exc
    return _by_key(rows)


async def set_nicks(conn: Conn, nicks: Sequence[tuple[int, str]]) -> None:
    """Set (conversation id, nick) pairs, skipping rows that already have it."""
    await conn.execute(
        """
        UPDATE conversations c SET customer_nick = u.nick
          FROM unnest($1::bigint[], $2::text[]) AS u(id, nick)
         WHERE c.id = u.id AND c.customer_nick IS DISTINCT FROM u.nick
        """,
        [conversation_id for conversation_id, _ in nicks],
        [nick for _, nick in nicks],
    )


async def open_many(
    conn: Conn, pairs: Sequence[tuple[int, str, str | None]], *, by_request: bool = False
) -> list[Conversation]:
    """Get or create each pair's conversation (raises NotFound for an unknown company).

    A pair repeated in the call is looked up once; its last non-None nick wins.
    Works inside a caller's transaction as well as without one. ``by_request``:
    the conversations it creates are opened by a request (migration 0015: the
    company joins the customer's roster when it answers).
    """
    nicks: dict[Key, str | None] = {}
    for company_id, jid, nick in pairs:
        if nick is not None or (company_id, jid) not in nicks:
            nicks[company_id, jid] = nick

    found = await find_many(conn, list(nicks))
    missing = [key for key in nicks if key not in found]
    for _ in range(_INSERT_ROUNDS):
        if not missing:
            break
        found |= await insert_new(
            conn, [(*key, nicks[key]) for key in missing], by_request=by_request
        )
        skipped = [key for key in missing if key not in found]
        if skipped:  # another process created them meanwhile, or a token collided
            found |= await find_many(conn, skipped)
        missing = [key for key in skipped if key not in found]
    if missing:
        raise RuntimeError("could not allocate conversation tokens")

    renamed = {
        key: nick
        for key, nick in nicks.items()
        if nick is not None and found[key].customer_nick != nick
    }
    if renamed:
        await set_nicks(conn, [(found[key].id, nick) for key, nick in renamed.items()])
        for key, nick in renamed.items():
            found[key] = dataclasses.replace(found[key], customer_nick=nick)

    return [found[company_id, jid] for company_id, jid, _ in pairs]


async def find(conn: Conn, company_id: int, customer_jid: str) -> Conversation | None:
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM conversations WHERE company_id = $1 AND customer_jid = $2",
        company_id,
        customer_jid,
    )
    return None if row is None else from_row(row)


async def of_company(conn: Conn, company_id: int, token: str) -> Conversation | None:
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM conversations WHERE token = $1 AND company_id = $2",
        token,
        company_id,
    )
    return None if row is None else from_row(row)


async def by_ids(conn: Conn, ids: Sequence[int]) -> list[Conversation]:
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM conversations WHERE id = ANY($1::bigint[]) ORDER BY id",
        list(ids),
    )
    return [from_row(row) for row in rows]


async def active_customers(conn: Conn, since: dt.datetime, limit: int) -> list[tuple[int, str]]:
    rows = await conn.fetch(
        """
        SELECT c.company_id, c.customer_jid
          FROM conversations c
         WHERE EXISTS (SELECT 1 FROM messages m
                        WHERE m.conversation_id = c.id AND m.ts >= $1)
         ORDER BY c.id DESC
         LIMIT $2
        """,
        since,
        limit,
    )
    return [(row["company_id"], row["customer_jid"]) for row in rows]


# -- forgetting a customer (GDPR) -------------------------------------------------

# One statement, so one snapshot: the counts are what was deleted. The
# messages are counted before the conversations' cascade deletes them.
_FORGET = """
    WITH counted AS (
        SELECT count(*) AS n FROM messages m
          JOIN conversations c ON c.id = m.conversation_id
         WHERE c.customer_jid = $1
    ), jobs AS (
        SELECT count(*) AS n FROM notify_jobs j
          JOIN conversations c ON c.id = j.conversation_id
         WHERE c.customer_jid = $1
    ), own_archive_gone AS (
        -- Their own archive (user_archives.py): every row is orgchat's.
        DELETE FROM archive
         WHERE server_host = split_part($1, '@', 2) AND username = split_part($1, '@', 1)
        RETURNING 1
    ), copies_gone AS (
        -- The copies of their conversations in the company's agents' archives.
        DELETE FROM archive a
         USING conversations c
               JOIN companies co ON co.id = c.company_id
               JOIN agents ag ON ag.company_id = c.company_id
         WHERE c.customer_jid = $1
           AND a.server_host = split_part(ag.jid, '@', 2)
           AND a.username = split_part(ag.jid, '@', 1)
           AND a.bare_peer LIKE co.slug || '+' || c.token || '@%'
        RETURNING 1
    ), conversations_gone AS (
        DELETE FROM conversations WHERE customer_jid = $1 RETURNING id
    ), requests_gone AS (
        DELETE FROM requests WHERE customer_jid = $1 RETURNING id
    ), contacts_gone AS (
        DELETE FROM contacts WHERE address = $1 RETURNING address
    ), push_gone AS (
        DELETE FROM push_subscriptions WHERE address = $1 RETURNING id
    ), roster_gone AS (
        DELETE FROM roster_jobs r
         WHERE r.agent_jid = $1
           -- Kept: what they have as an agent (their company, its conversations).
           AND NOT EXISTS (SELECT 1 FROM agents a JOIN companies co ON co.id = a.company_id
                            WHERE a.jid = r.agent_jid
                              AND co.slug = split_part(r.company_slug, '+', 1))
        RETURNING r.id
    )
    SELECT (SELECT count(*) FROM conversations_gone) AS conversations,
           (SELECT n FROM counted) AS messages,
           (SELECT count(*) FROM requests_gone) AS requests,
           (SELECT n FROM jobs) AS notify_jobs,
           (SELECT count(*) FROM contacts_gone) AS contacts,
           (SELECT count(*) FROM push_gone) AS push_subscriptions,
           (SELECT count(*) FROM roster_gone) AS roster_jobs,
           (SELECT count(*) FROM own_archive_gone)
               + (SELECT count(*) FROM copies_gone) AS own_archives
"""


async def forget_customer(conn: Conn, customer_jid: str) -> Forgotten:
    """Delete what is stored about a customer; see :mod:`storage.postgres.customers`."""
    row = await conn.fetchrow(_FORGET, customer_jid)
    assert row is not None
    return Forgotten(**{key: int(value) for key, value in row.items()})
