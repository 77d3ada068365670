"""The ``companies`` table: one row per company (its slug is the JID's local part).

Roster jobs and directory notifications that follow from changes here are
queued and sent by the table's triggers (migrations 0001 and 0011), not by
this module.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import asyncpg

from storage.errors import Conflict
from storage.models import Company, CompanyDraft
from storage.postgres.pool import Conn
from storage.postgres.tables.company_imports import BULK_TIMEOUT
from storage.postgres.tables.company_imports import TABLE as IMPORTS

COLUMNS = (
    "id, slug, name, email, timezone, hours, category, city, accepts_requests,"
    " away_message, reaction_window_s, phone, url, address"
    ", retention_days"
)

#: What a CompanyDraft sets besides the slug: what an import overwrites.
_DRAFT_FIELDS = (
    "name", "email", "timezone", "hours", "category", "city", "accepts_requests", "phone", "url",
    "address",
)  # fmt: skip
_DRAFT_COLUMNS = ", ".join(_DRAFT_FIELDS)
# The columns a CompanyDraft sets, in the order of the unnest() arrays below.
_DRAFT_ARRAYS = (
    "unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],"
    " $8::boolean[], $9::text[], $10::text[], $11::text[])"
)


def from_row(row: asyncpg.Record) -> Company:
    return Company(
        id=row["id"],
        slug=row["slug"],
        name=row["name"],
        email=row["email"],
        timezone=row["timezone"],
        hours=row["hours"],
        category=row["category"],
        city=row["city"],
        accepts_requests=row["accepts_requests"],
        retention_days=row["retention_days"],
        phone=row["phone"],
        url=row["url"],
        address=row["address"],
        away_message=row["away_message"],
        reaction_window_s=row["reaction_window_s"],
    )


def _columns(drafts: Sequence[CompanyDraft]) -> Iterator[Sequence[str | bool | None]]:
    """The drafts as one list per column (slug first), for unnest()."""
    yield [d.slug for d in drafts]
    yield [d.name for d in drafts]
    yield [d.email for d in drafts]
    yield [d.timezone for d in drafts]
    yield [d.hours for d in drafts]
    yield [d.category for d in drafts]
    yield [d.city for d in drafts]
    yield [d.accepts_requests for d in drafts]
    yield [d.phone for d in drafts]
    yield [d.url for d in drafts]
    yield [d.address for d in drafts]


async def insert_many(conn: Conn, drafts: Sequence[CompanyDraft]) -> list[Company]:
    """Insert new companies, in order.

    Raises Conflict if a slug exists, ValueError if a slug is malformed.
    """
    try:
        with _slug_checked():
            rows = await conn.fetch(
                f"""
                INSERT INTO companies (slug, {_DRAFT_COLUMNS})
                SELECT s, n, e, t, h, c, ci, ar, ph, u, ad
                  FROM {_DRAFT_ARRAYS} WITH ORDINALITY
                       AS d(s, n, e, t, h, c, ci, ar, ph, u, ad, ord)
                 ORDER BY ord
                RETURNING {COLUMNS}
                """,
                *_columns(drafts),
            )
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"company already exists: {exc.detail}") from exc
    by_slug = {row["slug"]: from_row(row) for row in rows}
    return [by_slug[d.slug] for d in drafts]


async def merge_imported(conn: Conn) -> tuple[int, int]:
    """Upsert the companies of ``company_imports`` by slug; (added, updated).

    A later row of a slug wins. A company whose fields already match is
    not rewritten (nor counted). Raises ValueError if a slug is malformed.
    """
    stored = ", ".join(f"c.{field}" for field in _DRAFT_FIELDS)
    imports = ", ".join(f"i.{field}" for field in _DRAFT_FIELDS)
    imported = ", ".join(f"excluded.{field}" for field in _DRAFT_FIELDS)
    with _slug_checked():
        row = await conn.fetchrow(
            f"""
            WITH latest AS (
                SELECT DISTINCT ON (slug) * FROM {IMPORTS} ORDER BY slug, ord DESC
            ), changed AS (  -- not even locking the companies that stay as they are
                SELECT i.* FROM latest i LEFT JOIN companies c USING (slug)
                 WHERE c.id IS NULL OR ({stored}) IS DISTINCT FROM ({imports})
            ), written AS (
                INSERT INTO companies AS c (slug, {_DRAFT_COLUMNS})
                SELECT slug, {_DRAFT_COLUMNS} FROM changed
                ON CONFLICT (slug) DO UPDATE SET ({_DRAFT_COLUMNS}) = ({imported})
                 WHERE ({stored}) IS DISTINCT FROM ({imported})
                -- xmax is 0 in a row version this statement inserted, not in one it updated.
                RETURNING xmax = 0 AS added
            )
            SELECT count(*) FILTER (WHERE added) AS added,
                   count(*) FILTER (WHERE NOT added) AS updated
              FROM written
            """,
            timeout=BULK_TIMEOUT,
        )
    assert row is not None  # an aggregate without GROUP BY: one row
    return row["added"], row["updated"]


@contextlib.contextmanager
def _slug_checked() -> Iterator[None]:
    """Turn the slug's CHECK constraint into ValueError."""
    try:
        yield
    except asyncpg.CheckViolationError as exc:
        if exc.constraint_name != "companies_slug_format":
            raise
        raise ValueError(
            "company slug must be 1-64 characters of a-z, 0-9 and inner hyphens"
        ) from exc


async def delete(conn: Conn, slug: str) -> bool:
    """Delete a company; cascades to its agents, conversations and messages."""
    status = await conn.execute("DELETE FROM companies WHERE slug = $1", slug)
    return status != "DELETE 0"


async def by_slug(conn: Conn, slug: str) -> Company | None:
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM companies WHERE slug = $1", slug)
    return None if row is None else from_row(row)


async def list_all(conn: Conn) -> list[Company]:
    rows = await conn.fetch(f"SELECT {COLUMNS} FROM companies ORDER BY slug")
    return [from_row(row) for row in rows]


async def with_agents(conn: Conn) -> list[Company]:
    """The companies that have at least one agent, by slug."""
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM companies c"
        " WHERE EXISTS (SELECT 1 FROM agents a WHERE a.company_id = c.id) ORDER BY slug"
    )
    return [from_row(row) for row in rows]


async def by_slugs(conn: Conn, slugs: Sequence[str]) -> list[Company]:
    """The existing companies among ``slugs``, by slug."""
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM companies WHERE slug = ANY($1::text[]) ORDER BY slug", list(slugs)
    )
    return [from_row(row) for row in rows]


async def by_ids(conn: Conn, ids: Sequence[int]) -> list[Company]:
    """The existing companies among ``ids``, by id."""
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM companies WHERE id = ANY($1::bigint[]) ORDER BY id", list(ids)
    )
    return [from_row(row) for row in rows]


async def set_hours(conn: Conn, company_id: int, hours: str | None, timezone: str) -> bool:
    """Set opening hours and time zone (the agent desk); False if no such company."""
    status = await conn.execute(
        "UPDATE companies SET hours = $2, timezone = $3 WHERE id = $1", company_id, hours, timezone
    )
    return status != "UPDATE 0"


async def set_away_message(conn: Conn, company_id: int, text: str | None) -> bool:
    status = await conn.execute(
        "UPDATE companies SET away_message = $2 WHERE id = $1", company_id, text
    )
    return status != "UPDATE 0"


async def set_reaction_window(conn: Conn, company_id: int, seconds: int | None) -> bool:
    status = await conn.execute(
        "UPDATE companies SET reaction_window_s = $2 WHERE id = $1", company_id, seconds
    )
    return status != "UPDATE 0"


async def set_retention(conn: Conn, company_id: int, days: int | None) -> None:
    """Keep the company's archived messages ``days`` days (None: forever).

    Import files do not carry it: an import that updates a company leaves it.
    Raises ValueError unless ``days`` is None or positive.
    """
    try:
        await conn.execute(
            "UPDATE companies SET retention_days = $2 WHERE id = $1", company_id, days
        )
    except asyncpg.CheckViolationError as exc:
        raise ValueError("retention must be a positive number of days") from exc


async def with_retention(conn: Conn) -> list[Company]:
    """The companies whose archive has a retention period, by id."""
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM companies WHERE retention_days IS NOT NULL ORDER BY id"
    )
    return [from_row(row) for row in rows]
