"""The metrics endpoint of a component process: /metrics and /healthz."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from component import metrics


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.asyncio
async def test_metrics_and_health_on_their_port() -> None:
    server = metrics.MetricsServer("127.0.0.1", 0)
    await server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        metrics.stream_changed(False, lost=False)
        assert get(base + "/healthz") == (503, "the stream to ejabberd is down\n")
        metrics.stream_changed(True)
        assert get(base + "/healthz") == (200, "ok\n")
        lost = REGISTRY.get_sample_value("orgchat_stream_lost_total") or 0.0
        metrics.stream_changed(False)
        metrics.stream_changed(False)  # still down: lost once
        assert REGISTRY.get_sample_value("orgchat_stream_lost_total") == lost + 1
        metrics.MESSAGES.labels("customer").inc()
        status, text = get(base + "/metrics")
        assert status == 200
        for name in (
            'orgchat_messages_total{kind="customer"}',
            "orgchat_batch_size_bucket",
            "orgchat_commit_seconds_bucket",
            "orgchat_stream_up 0.0",
            "orgchat_stream_lost_total",
            "orgchat_pending_messages",
        ):
            assert name in text, name
        assert get(base + "/other")[0] == 404
    finally:
        await server.stop()


def test_the_dashboard_shows_only_metrics_that_exist() -> None:
    """docs/grafana-dashboard.json: every metric a panel queries is one of ours."""
    dashboard = json.loads(
        (Path(__file__).parents[2] / "docs" / "grafana-dashboard.json").read_text()
    )
    names = {
        re.sub(r"_(total|bucket|sum|count)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b(orgchat_[a-z_]+)", target["expr"])
    }
    exported = {metric.name for metric in REGISTRY.collect() if metric.name.startswith("orgchat_")}
    assert names and names <= exported, names - exported


@pytest.mark.asyncio
async def test_a_port_taken_is_logged_and_nothing_else_stops() -> None:
    first = metrics.MetricsServer("127.0.0.1", 0)
    await first.start()
    try:
        second = metrics.MetricsServer("127.0.0.1", first.port)
        await second.start()  # no exception: the process goes on routing
        await second.stop()
    finally:
        await first.stop()
