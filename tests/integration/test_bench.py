"""`make bench` in quick mode, as a smoke test: it runs, loses nothing, reports well.

Speed is never asserted here (benchmarks measure, tests assert behaviour);
bench/README.md explains how to read the figures.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import REPO

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
