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
