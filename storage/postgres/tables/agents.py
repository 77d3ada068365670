"""The ``agents`` table: who answers for which company, and with which role.

Callers name companies by slug, so the queries here join ``companies`` to
resolve it in the same statement. Inserting or deleting a row queues the
matching roster job through the table's triggers (migration 0001); every
statement that changes rows notifies the directory's listeners (0011).
"""

from __future__ import annotations

import asyncpg

from storage.errors import Conflict
from storage.models import Agent, Role
from storage.postgres.pool import Conn
from storage.postgres.tables.company_imports import BULK_TIMEOUT
from storage.postgres.tables.company_imports import TABLE as IMPORTS

COLUMNS = "company_id, jid, role"


def from_row(row: asyncpg.Record) -> Agent:
    return Agent(company_id=row["company_id"], jid=row["jid"], role=Role(row["role"]))


async def insert(conn: Conn, slug: str, jid: str, role: Role) -> Agent | None:
    """Add an agent; None if the company does not exist, Conflict if already there."""
    try:
        row = await conn.fetchrow(
            f"""
            INSERT INTO agents (company_id, jid, role)
            SELECT id, $2, $3 FROM companies WHERE slug = $1
            RETURNING {COLUMNS}
            """,
            slug,
            jid,
            role.value,
        )
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"{jid} is already an agent of {slug}") from exc
    return None if row is None else from_row(row)


async def delete(conn: Conn, slug: str, jid: str) -> bool:
    status = await conn.execute(
        """
        DELETE FROM agents a USING companies c
         WHERE c.id = a.company_id AND c.slug = $1 AND a.jid = $2
        """,
        slug,
        jid,
    )
    return status != "DELETE 0"


async def of_company(conn: Conn, slug: str) -> list[Agent] | None:
    """The company's agents by JID; None if the company does not exist."""
    # LEFT JOIN: one round trip tells "no such company" (no row) apart from
    # "no agents" (one row of NULLs).
    rows = await conn.fetch(
        """
        SELECT c.id AS company_id, a.jid, a.role
          FROM companies c LEFT JOIN agents a ON a.company_id = c.id
         WHERE c.slug = $1
         ORDER BY a.jid
        """,
        slug,
    )
    if not rows:
        return None
    return [from_row(row) for row in rows if row["jid"] is not None]


async def list_all(conn: Conn) -> list[Agent]:
    rows = await conn.fetch(f"SELECT {COLUMNS} FROM agents ORDER BY company_id, jid")
    return [from_row(row) for row in rows]


async def merge_imported(conn: Conn) -> int:
    """Add the agents listed in ``company_imports``; return how many were new.

    A listed agent already there keeps its row; only its role is corrected
    (the last listing wins). Agents not listed stay.
    """
    added: int = await conn.fetchval(
        f"""
        WITH listed AS (
            SELECT DISTINCT ON (c.id, a.jid) c.id AS company_id, a.jid, a.role
              FROM {IMPORTS} i
             CROSS JOIN LATERAL unnest(i.agent_jids, i.agent_roles) WITH ORDINALITY
                   AS a(jid, role, n)
              JOIN companies c ON c.slug = i.slug
             ORDER BY c.id, a.jid, i.ord DESC, a.n DESC
        ), written AS (
            INSERT INTO agents AS a (company_id, jid, role)
            SELECT company_id, jid, role FROM listed
            ON CONFLICT (company_id, jid) DO UPDATE SET role = excluded.role
             WHERE a.role <> excluded.role
            -- xmax is 0 in a row version this statement inserted, not in one it updated.
            RETURNING xmax = 0 AS added
        )
        SELECT count(*) FILTER (WHERE added) FROM written
        """,
        timeout=BULK_TIMEOUT,
    )
    return added
