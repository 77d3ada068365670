"""The batch loop's held connection (storage.postgres.pool.Held), on the real server.

It stays borrowed between uses, and goes back to the pool whenever keeping it
would be wrong: a failed use, a server that closed it, a pool that closes.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from storage.errors import Unavailable
from storage.postgres.pool import Database

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

Sql = asyncpg.Connection  # the plain connection of the `sql` fixture

PID = "SELECT pg_backend_pid()"


def database(dsn: str, *, command_timeout: float = 5.0) -> Database:
    return Database(dsn, min_size=1, max_size=3, command_timeout=command_timeout)


async def test_one_connection_serves_one_use_after_another(pg_dsn: str) -> None:
    db = database(pg_dsn)
    held = db.held()
    try:
        pids = []
        for _ in range(3):
            async with held.acquire() as conn:
                pids.append(await conn.fetchval(PID))
        assert len(set(pids)) == 1
        async with db.acquire() as other:  # the rest of the pool still serves
            assert await other.fetchval(PID) != pids[0]
    finally:
        await db.close()


async def test_overlapping_uses_do_not_wait_for_each_other(pg_dsn: str) -> None:
    db = database(pg_dsn)
    held = db.held()
    try:
        async with held.acquire() as first:
            async with held.acquire() as second:  # borrowed from the pool meanwhile
                assert await second.fetchval(PID) != await first.fetchval(PID)
            kept = await first.fetchval(PID)
        async with held.acquire() as again:
            assert await again.fetchval(PID) == kept
    finally:
        await db.close()


async def test_a_failed_use_gives_the_connection_back_rolled_back(pg_dsn: str, sql: Sql) -> None:
    db = database(pg_dsn)
    held = db.held()
    try:
        with pytest.raises(asyncpg.DivisionByZeroError):
            async with held.acquire() as conn:
                failed = await conn.fetchval(PID)
                await conn.execute("BEGIN")
                await conn.fetchval("SELECT 1 / 0")
        state = await sql.fetchval("SELECT state FROM pg_stat_activity WHERE pid = $1", failed)
        assert state == "idle"  # not "idle in transaction (aborted)": the pool rolled it back
        async with held.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT 2") == 2
    finally:
        await db.close()


async def test_a_connection_its_server_closed_is_replaced(pg_dsn: str, sql: Sql) -> None:
    """A PostgreSQL restart terminates every backend (57P01 admin shutdown)."""
    db = database(pg_dsn)
    held = db.held()
    try:
        async with held.acquire() as conn:
            before = await conn.fetchval(PID)
        assert await sql.fetchval("SELECT pg_terminate_backend($1)", before)
        await asyncio.sleep(0.2)  # the client reads the server's goodbye
        async with held.acquire() as conn:
            after = await conn.fetchval(PID)
        assert after != before
    finally:
        await db.close()


async def test_a_connection_lost_mid_use_is_unavailable_then_replaced(
    pg_dsn: str, sql: Sql
) -> None:
    db = database(pg_dsn)
    held = db.held()
    try:
        with pytest.raises(Unavailable):
            async with held.acquire() as conn:
                pid = await conn.fetchval(PID)
                await sql.execute("SELECT pg_terminate_backend($1)", pid)
                await conn.fetchval("SELECT pg_sleep(1)")
        async with held.acquire() as conn:
            assert await conn.fetchval(PID) != pid
    finally:
        await db.close()


async def test_closing_the_database_takes_the_connection_back(pg_dsn: str, sql: Sql) -> None:
    # A connection still borrowed would hold close() for its whole timeout.
    db = database(pg_dsn, command_timeout=60.0)
    held = db.held()
    async with held.acquire() as conn:
        pid = await conn.fetchval(PID)
    async with asyncio.timeout(10):
        await db.close()
    assert await sql.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid) == 0
    with pytest.raises(Unavailable):
        async with held.acquire():
            pass


async def test_closing_while_in_use_takes_the_connection_back_when_the_use_ends(
    pg_dsn: str, sql: Sql
) -> None:
    db = database(pg_dsn, command_timeout=60.0)
    held = db.held()
    async with asyncio.timeout(10):
        async with held.acquire() as conn:
            pid = await conn.fetchval(PID)
            closing = asyncio.create_task(db.close())
            await asyncio.sleep(0)  # close() lets go of the pool and waits for its connections
            assert not closing.done()
            assert await conn.fetchval("SELECT 3") == 3  # the use goes on meanwhile
        await closing
    assert await sql.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid) == 0
