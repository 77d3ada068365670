"""The ``agents`` table: who answers for which company, and with which role.

Callers name companies by slug, so the queries here join ``companies`` to
resolve it in the same statement. Inserting or deleting a row queues the
matching roster job through the table's triggers (migration 0001).
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from storage.errors import Conflict
from storage.models import Agent, Role
from storage.postgres.pool import Conn

COLUMNS = "company_id, jid, role"

#: (company_id, jid, role): one agent as the import writes it.
AgentRow = tuple[int, str, Role]


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


async def insert_missing(conn: Conn, agents: Sequence[AgentRow]) -> int:
    """Add the agents that are not there yet; return how many were added."""
    rows = await conn.fetch(
        """
        INSERT INTO agents (company_id, jid, role)
        SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[])
        ON CONFLICT (company_id, jid) DO NOTHING
        RETURNING jid
        """,
        *_columns(agents),
    )
    return len(rows)


async def update_roles(conn: Conn, agents: Sequence[AgentRow]) -> None:
    """Set the role of existing agents; rows already right are not rewritten."""
    await conn.execute(
        """
        UPDATE agents SET role = u.role
          FROM unnest($1::bigint[], $2::text[], $3::text[]) AS u(company_id, jid, role)
         WHERE agents.company_id = u.company_id AND agents.jid = u.jid
           AND agents.role <> u.role
        """,
        *_columns(agents),
    )


def _columns(agents: Sequence[AgentRow]) -> tuple[list[int], list[str], list[str]]:
    return (
        [company_id for company_id, _, _ in agents],
        [jid for _, jid, _ in agents],
        [role.value for _, _, role in agents],
    )
