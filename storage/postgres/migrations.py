"""Schema migrations: numbered, forward-only SQL files and the table that records them.

``migrations/NNNN_name.sql`` files are applied in order, each in its own
transaction together with its row in ``schema_migrations``. Applied files are
never edited; a change is a new file. A session advisory lock serialises
runners, so two processes starting at once apply each migration exactly once.
"""

from __future__ import annotations

import dataclasses
import re
from importlib import resources

import asyncpg

#: Arbitrary but fixed: every orgchat migration runner takes this advisory lock.
_LOCK_KEY = 0x6F72676368617401  # "orgchat" + 0x01

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_CREATE_TABLE = """
    CREATE TABLE IF NOT EXISTS schema_migrations (
        version     integer PRIMARY KEY,
        name        text NOT NULL,
        applied_at  timestamptz NOT NULL DEFAULT now()
    )
"""


@dataclasses.dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str  #: the file name without ".sql", e.g. "0001_initial"
    sql: str


def available() -> list[Migration]:
    """Every migration shipped with this package, in version order."""
    found: dict[int, Migration] = {}
    for entry in (resources.files("storage.postgres") / "migrations").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match is None:
            continue
        version = int(match.group(1))
        if version in found:
            raise RuntimeError(f"two migrations numbered {version:04d}")
        found[version] = Migration(version, entry.name.removesuffix(".sql"), entry.read_text())
    return [found[version] for version in sorted(found)]


async def apply_pending(conn: asyncpg.Connection[asyncpg.Record]) -> list[str]:
    """Apply the migrations not applied yet; return their names, in order."""
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(_CREATE_TABLE)
        done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        applied: list[str] = []
        for migration in available():
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
            applied.append(migration.name)
        return applied
    finally:
        # Also released if the connection dies, as every session lock.
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


async def current_version(conn: asyncpg.Connection[asyncpg.Record]) -> int:
    """The highest applied version; 0 for a database never migrated."""
    if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
        return 0
    version = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations")
    return int(version)
