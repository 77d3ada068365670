"""`make bench` in quick mode, as a smoke test: it runs, loses nothing, reports well.

Speed is never asserted here (benchmarks measure, tests assert behaviour);
bench/README.md explains how to read the figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path

import asyncpg
import pytest

from tests.integration.conftest import PG_ADMIN_URL, REPO

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

PATH_KEYS = {"max_rate", "p50_ms", "p95_ms", "p99_ms", "cpu_ms_per_msg", "runs", "spread"}
TOP_KEYS = {
    "paths",
    "ratio_c_over_a",
    "ratio_c_over_b",
    "ratio_c_over_r",
    "p99_ms_c_at_half_max",
    "component_cpu_ms_per_msg",
    "machine",
    "date",
}


async def test_quick_bench_loses_nothing_and_writes_a_complete_report(
    services: None, tmp_path: Path
) -> None:
    out = tmp_path / "bench.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.run",
        "--quick",
        "--out",
        str(out),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await proc.communicate()
    text = output.decode()
    assert proc.returncode == 0, text
    report = json.loads(out.read_text())
    assert report == json.loads((REPO / "bench" / "results" / "latest.json").read_text())
    assert report.keys() >= TOP_KEYS
    assert set(report["paths"]) == {"A", "B", "R", "C"}
    for name, path in report["paths"].items():
        assert path.keys() >= PATH_KEYS, name
        assert path["max_rate"] > 0
        for run in path["runs"]:
            # Zero loss: every message sent was delivered, without errors; on
            # the orgchat path every message was also acknowledged (archived).
            assert run["delivered"] == run["sent"] > 0, (name, run)
            assert run["errors"] == 0, (name, run)
            if name in "RC":
                assert run["receipts"] == run["sent"], run
        assert {"ejabberd", "postgres", "redis", "loadgen"} <= path["cpu_ms_per_msg"].keys()
    assert "component" in report["paths"]["C"]["cpu_ms_per_msg"]
    assert "component" in report["paths"]["R"]["cpu_ms_per_msg"]
    assert report["ratio_c_over_a"] > 0 and report["ratio_c_over_b"] > 0
    assert report["ratio_c_over_r"] > 0
    assert report["p99_ms_c_at_half_max"] is not None
    assert report["machine"]["cores"] >= 1
    # The table is printed too.
    assert "ratio_c_over_a" in text and "max msg/s" in text


#: The smoke's own database: the bench's (orgchat_bench) may hold a kept fill
#: of a million companies that a developer measures again with --reuse.
SMOKE_DB = "orgchat_bench_smoke"


async def test_the_directory_search_bench_runs_and_reports_every_kind(
    services: None, tmp_path: Path
) -> None:
    """`python -m bench.directory search` on a small directory, in a database
    of its own: every kind of search answered (a failed one stops the run), the
    messages all delivered, alone and with searches, in each pair of steps."""
    out = tmp_path / "search.json"
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bench.directory", "search", "--companies", "3000"),
        *("--repeat", "5", "--rate", "200", "--seconds", "1", "--pairs", "2"),
        *("--database", SMOKE_DB),
        *("--out", str(out)),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await proc.communicate()
    assert proc.returncode == 0, output.decode()
    report = json.loads(out.read_text())
    kinds = {"unique_substring", "category_and_city", "broad_substring", "broad_open_now"}
    assert set(report["search"]) == kinds | {"disco_items_page"}
    for kind, figures in report["search"].items():
        assert 0 < figures["p50_ms"] <= figures["p99_ms"], kind
        assert len(figures["slowest"]) == 5, kind
        assert figures["cpu_ms"].keys() == {"component", "postgres", "ejabberd"}, kind
    messages = report["messages"]
    for step in (messages["alone"], messages["with_searches"]):
        assert step["delivered"] == step["sent"] > 0, step
        assert len(step["p99s_ms"]) == 2 and step["p99_ms"] > 0, step
    assert messages["with_searches"]["search"]["p50_ms"] > 0
    assert report["fill_s"] is not None and report["rss_mb_at_start"] > 0
    assert report["database"] == SMOKE_DB
    db = await asyncpg.connect(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + SMOKE_DB)
    try:
        assert await db.fetchval("SELECT count(*) FROM companies WHERE slug LIKE 'dir-%'") == 3000
    finally:
        await db.close()


def _components_of(pid: int) -> set[int]:
    """The `component run` processes that process ``pid`` started and still runs."""
    found = set()
    with contextlib.suppress(OSError):  # it has exited
        for children in Path(f"/proc/{pid}/task").glob("*/children"):
            for child in children.read_text().split():
                with contextlib.suppress(OSError):
                    if b"-m\0component\0run\0" in Path(f"/proc/{child}/cmdline").read_bytes():
                        found.add(int(child))
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


async def test_a_terminated_bench_stops_the_component_it_started(
    services: None, tmp_path: Path
) -> None:
    """SIGTERM to a running bench: it exits, and the component it started stops
    with it (left running, it would stay attached to the bench domain and take
    half of the next run's stanzas)."""
    ready = REPO / ".run" / "bench-component-1.ready"
    with (tmp_path / "bench.log").open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "bench.run", "--quick", "--paths", "C"),
            cwd=REPO,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    components: set[int] = set()
    try:
        # Until its component is attached (the bench deletes the ready file
        # before starting it). It may first wait for another benchmark's lock.
        async with asyncio.timeout(600):
            while not (components and ready.exists()):
                assert proc.returncode is None, (tmp_path / "bench.log").read_text()
                components = _components_of(proc.pid)
                await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            await proc.wait()
        assert not [pid for pid in components if _running(pid)], "left running"
        assert proc.returncode == 128 + signal.SIGTERM, (tmp_path / "bench.log").read_text()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        for pid in components:  # never left attached, even when the test fails
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
