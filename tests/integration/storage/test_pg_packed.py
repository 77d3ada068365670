"""Columns packed as text (storage/postgres/packed.py) read back by PostgreSQL
exactly as they were: the SQL of packed.column against the real server."""

from __future__ import annotations

import datetime as dt

import asyncpg
import pytest

from storage.postgres import packed

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

TRICKY: list[str | None] = [
    "",
    None,
    "NULL",
    "null",
    '{"a", b}',
    "back\\slash \\x1f \"quoted\" 'single'",
    "line\nbreak\ttab\rcr\x01",
    "Привет, 你好, 🙂, \u2028\ufeff",
    " spaced ",
    ",",
    "",
]


@pytest.mark.parametrize(
    "values",
    [[], [""], [None], ["", ""], TRICKY, list(reversed(TRICKY))],
    ids=["empty", "one-empty-string", "one-null", "two-empty-strings", "tricky", "reversed"],
)
async def test_texts_read_back_as_sent(
    sql: asyncpg.Connection[asyncpg.Record], values: list[str | None]
) -> None:
    got = await sql.fetchval(f"SELECT {packed.column('$1', 'text')}", packed.texts(values))
    assert got == values


async def test_numbers_flags_and_moments_read_back_as_sent(
    sql: asyncpg.Connection[asyncpg.Record],
) -> None:
    moments = [
        dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 6, 23, 59, 59, 999_999, tzinfo=dt.UTC),
        dt.datetime(2099, 12, 31, 23, 59, 59, 1, tzinfo=dt.timezone(dt.timedelta(hours=7))),
    ]
    row = await sql.fetchrow(
        f"SELECT {packed.column('$1', 'bigint')} AS numbers,"
        f" {packed.column('$2', 'boolean')} AS flags,"
        f" ARRAY(SELECT {packed.moment('u')} FROM unnest({packed.column('$3', 'bigint')}) u)"
        " AS moments",
        packed.numbers([0, -1, 2**62]),
        packed.flags([True, False, True]),
        packed.numbers([packed.micros(m) for m in moments]),
    )
    assert row is not None
    assert (row["numbers"], row["flags"], row["moments"]) == (
        [0, -1, 2**62],
        [True, False, True],
        moments,
    )
