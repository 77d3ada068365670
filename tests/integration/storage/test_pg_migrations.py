"""Migrations: applied once, in order, idempotent, safe from concurrent runners."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from storage import postgres
from storage.postgres import migrations

SHIPPED = migrations.available()

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def test_migrate_again_applies_nothing(pg_dsn: str) -> None:
    assert await postgres.migrate(pg_dsn) == []
    assert await postgres.schema_version(pg_dsn) == SHIPPED[-1].version


async def test_concurrent_runners_apply_each_migration_once(scratch_dsn: str) -> None:
    assert await postgres.schema_version(scratch_dsn) == 0

    results = await asyncio.gather(*(postgres.migrate(scratch_dsn) for _ in range(4)))

    assert sorted(results) == [[], [], [], [m.name for m in SHIPPED]]
    assert await postgres.schema_version(scratch_dsn) == SHIPPED[-1].version
    conn = await asyncpg.connect(scratch_dsn)
    try:
        rows = await conn.fetch(
            "SELECT version, name, applied_at FROM schema_migrations ORDER BY version"
        )
    finally:
        await conn.close()
    assert [(r["version"], r["name"]) for r in rows] == [(m.version, m.name) for m in SHIPPED]
    assert SHIPPED[0].name == "0001_initial"
    assert rows[0]["applied_at"] is not None


async def test_stored_text_xml_cannot_carry_is_cleaned(scratch_dsn: str) -> None:
    """0022 takes out of company cards, canned replies and desk notes the
    characters XML cannot carry, which input refuses since (run again here on
    rows written behind input's back: it is idempotent)."""
    await postgres.migrate(scratch_dsn)
    [cleanup] = [m for m in SHIPPED if m.name == "0022_text_xml_can_carry"]
    conn = await asyncpg.connect(scratch_dsn)
    try:
        company_id = await conn.fetchval(
            "INSERT INTO companies (slug, name, city, address, away_message)"
            " VALUES ('pizza', E'Piz\\x01za', E'\\x1b', E'Lenina\\x08 1', 'Back soon') RETURNING id"
        )
        await conn.execute(
            "INSERT INTO companies (slug, name) VALUES ('bikes', E'\\x02'), ('cafe', 'Cafe')"
        )
        await conn.execute(
            "INSERT INTO canned_replies (company_id, title, body)"
            " VALUES ($1, E'Hi\\x07', E'Hello\\x0b there'), ($1, 'Hi', 'Hello')",
            company_id,
        )
        await conn.execute(cleanup.sql)
        await conn.execute(cleanup.sql)  # again: nothing left to change
        companies = await conn.fetch(
            "SELECT slug, name, city, address, away_message FROM companies ORDER BY slug"
        )
        assert [tuple(r) for r in companies] == [
            ("bikes", "bikes", None, None, None),
            ("cafe", "Cafe", None, None, None),
            ("pizza", "Pizza", None, "Lenina 1", "Back soon"),
        ]
        replies = await conn.fetch("SELECT id, title, body FROM canned_replies ORDER BY id")
        first = replies[0]["id"]
        assert [(r["title"], r["body"]) for r in replies] == [
            (f"Hi ({first})", "Hello there"),
            ("Hi", "Hello"),
        ]
    finally:
        await conn.close()


async def test_the_archive_search_index_takes_words_at_once(
    sql: asyncpg.Connection[asyncpg.Record],
) -> None:
    """0023: no archiving statement ever pays for merging GIN's pending list."""
    options = await sql.fetchval(
        "SELECT reloptions FROM pg_class WHERE relname = 'messages_body_search'"
    )
    assert options == ["fastupdate=off"]
