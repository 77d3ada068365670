"""`orgchat import` from file to PostgreSQL: the command itself (`component.cli.main`,
no component running), against the storage tests' database.

What tests/integration/test_cli.py checks against the whole stack (rosters,
a running component), this checks without it, down to the output's lines:
all or nothing, --skip-bad, one line per bad row.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from component.cli import EXIT_USAGE, main
from component.features.directory.input import MAX_LISTED

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

Sql = asyncpg.Connection  # the plain connection of the `sql` fixture
#: ``await orgchat("import", FILE)`` -> (exit status, stdout, stderr)
Orgchat = Callable[..., Awaitable[tuple[int, str, str]]]


@pytest.fixture
def orgchat(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Orgchat:
    """Run ``orgchat ARGS...`` on the test database: (exit status, stdout, stderr)."""
    for name in [n for n in os.environ if n.startswith("ORGCHAT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ORGCHAT_DATABASE_URL", pg_dsn)

    async def run(*args: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(main, list(args))  # main() runs its own event loop
        out, err = capsys.readouterr()
        return code, out, err

    return run


async def companies_like(sql: Sql, slug: str) -> list[str]:
    rows = await sql.fetch("SELECT slug FROM companies WHERE slug LIKE $1 ORDER BY 1", f"{slug}-%")
    return [r["slug"] for r in rows]


def bad_file(tmp_path: Path, slug: str, bad: int) -> Path:
    path = tmp_path / "companies.csv"
    lines = ["slug,name,timezone,agents", f"{slug}-a,A,Asia/Novosibirsk,mario@localhost"]
    lines += [f"{slug}-bad{n},Bad,Mars/Base{n}," for n in range(bad)]
    lines += [f"{slug}-b,B,,luigi@localhost:admin"]
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_a_bad_row_imports_nothing(
    orgchat: Orgchat, sql: Sql, slug: str, tmp_path: Path
) -> None:
    path = bad_file(tmp_path, slug, bad=2)
    code, out, err = await orgchat("import", str(path))
    assert (code, out) == (EXIT_USAGE, "")
    assert err.splitlines() == [
        f"orgchat: error: {path}:3: timezone: unknown time zone 'Mars/Base0' "
        "(use an IANA name such as Europe/Berlin)",
        f"orgchat: error: {path}:4: timezone: unknown time zone 'Mars/Base1' "
        "(use an IANA name such as Europe/Berlin)",
        f"orgchat: error: {path}: 2 bad rows, nothing imported (--skip-bad imports the rest)",
    ]
    assert await companies_like(sql, slug) == []


async def test_many_bad_rows_are_listed_up_to_a_limit(
    orgchat: Orgchat, sql: Sql, slug: str, tmp_path: Path
) -> None:
    path = bad_file(tmp_path, slug, bad=MAX_LISTED + 1)
    code, _, err = await orgchat("import", str(path))
    lines = err.splitlines()
    assert (code, len(lines)) == (EXIT_USAGE, MAX_LISTED + 1)
    assert lines[-1] == (
        f"orgchat: error: {path}: {MAX_LISTED + 1} bad rows (the first {MAX_LISTED} above), "
        "nothing imported (--skip-bad imports the rest)"
    )
    assert await companies_like(sql, slug) == []


async def test_skip_bad_imports_the_rest_and_lists_what_it_skipped(
    orgchat: Orgchat, sql: Sql, slug: str, tmp_path: Path
) -> None:
    path = bad_file(tmp_path, slug, bad=2)
    code, out, err = await orgchat("import", str(path), "--skip-bad")
    assert code == 0
    assert out == (
        "imported 2 companies: 2 added, 0 updated, 2 agents added; "
        "2 roster updates queued; 2 bad rows skipped\n"
    )
    assert [line.split(": timezone: ")[0] for line in err.splitlines()] == [
        f"orgchat: skipped {path}:3",
        f"orgchat: skipped {path}:4",
    ]
    assert await companies_like(sql, slug) == [f"{slug}-a", f"{slug}-b"]

    code, out, err = await orgchat("import", str(path), "--skip-bad")
    assert out.startswith("imported 2 companies: 0 added, 0 updated, 0 agents added;")
    await sql.execute("DELETE FROM companies WHERE slug LIKE $1", f"{slug}-%")
