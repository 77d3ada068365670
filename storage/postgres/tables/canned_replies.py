"""The ``canned_replies`` table: a company's prepared answers, unique by title."""

from __future__ import annotations

import asyncpg

from storage.errors import Conflict, NotFound
from storage.models import CannedReply
from storage.postgres.pool import Conn

COLUMNS = "id, company_id, title, body"


def from_row(row: asyncpg.Record) -> CannedReply:
    return CannedReply(
        id=row["id"], company_id=row["company_id"], title=row["title"], body=row["body"]
    )


async def of_company(conn: Conn, company_id: int) -> list[CannedReply]:
    """By title."""
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM canned_replies WHERE company_id = $1 ORDER BY title, id",
        company_id,
    )
    return [from_row(r) for r in rows]


async def insert(conn: Conn, company_id: int, title: str, body: str) -> CannedReply:
    """Raises Conflict (the title exists) or NotFound (no such company)."""
    try:
        row = await conn.fetchrow(
            f"""
            INSERT INTO canned_replies (company_id, title, body) VALUES ($1, $2, $3)
            RETURNING {COLUMNS}
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
    return from_row(row)


async def delete(conn: Conn, company_id: int, reply_id: int) -> bool:
    """False if the company has no such reply."""
    status = await conn.execute(
        "DELETE FROM canned_replies WHERE company_id = $1 AND id = $2", company_id, reply_id
    )
    return status != "DELETE 0"
