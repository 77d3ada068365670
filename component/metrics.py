"""Metrics and health of one component process, for Prometheus and supervisors.

The metrics are prometheus-client's, in its default registry (one per
process: Prometheus scrapes each process and sums). :class:`MetricsServer`
answers on a loopback HTTP port (``metrics.port``; 0: off), in a thread of
its own so that a scrape never waits for the event loop:

* ``/metrics``: the metrics below, in Prometheus' text format;
* ``/healthz``: ``200 ok`` while the stream to ejabberd is up, ``503``
  otherwise (a process that runs but cannot route anything is not healthy).

What each metric means is in docs/operations.md ("Metrics and health"). The
code that counts imports the metric it counts from here; nothing else is
known of Prometheus.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    make_wsgi_app,
)

from component.logs import get_logger
from storage.errors import Unavailable, raise_if_cancelling
from storage.protocols import ArchiveStore

log = get_logger(__name__)

# No `_created` series beside each counter: a timestamp per label set that
# nobody here graphs, and as many series again to scrape.
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in prometheus-client

MESSAGES = Counter(
    "orgchat_messages",
    "Messages routed, by kind: from customers, from companies (agents), or "
    "signals without a body (chat states, markers, receipts).",
    ["kind"],
)
BATCH_SIZE = Histogram(
    "orgchat_batch_size",
    "Messages per routed batch.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)
COMMIT_SECONDS = Histogram(
    "orgchat_commit_seconds",
    "Time of one batch's archive statement (PostgreSQL round trip and commit).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
RECEIPTS = Counter(
    "orgchat_receipts",
    "Delivery receipts sent to senders for messages the archive holds.",
)
PENDING = Gauge(
    "orgchat_pending_messages",
    "Customer messages waiting for an agent to come online (read every 15 s).",
)
STREAM_UP = Gauge("orgchat_stream_up", "1 while the stream to ejabberd is up, else 0.")
STREAM_LOST = Counter(
    "orgchat_stream_lost", "Streams to ejabberd lost (each followed by reconnection attempts)."
)
NOTIFICATIONS = Counter(
    "orgchat_notifications",
    "Notification steps off XMPP, by channel (email, push) and outcome (sent, "
    "failed: refused for good, gave_up: failed too often).",
    ["channel", "outcome"],
)
REQUESTS = Counter("orgchat_requests", "Requests to several companies sent.")
REQUEST_COMPANIES = Counter(
    "orgchat_request_companies", "Companies the requests to several companies went to."
)
ERRORS = Counter(
    "orgchat_errors",
    "Errors answered to senders of messages, by condition (RFC 6120 §8.3.3).",
    ["condition"],
)

#: How often the pending-messages gauge is read from storage.
PENDING_INTERVAL_S = 15.0

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


_stream_up = threading.Event()


def stream_changed(up: bool, *, lost: bool = True) -> None:
    """The stream to ejabberd came up, or went down (``lost``: not on purpose)."""
    STREAM_UP.set(1 if up else 0)
    if up:
        _stream_up.set()
        return
    if _stream_up.is_set() and lost:
        STREAM_LOST.inc()
    _stream_up.clear()


def health() -> bool:
    """Whether this process can route: its stream to ejabberd is up."""
    return _stream_up.is_set()


def _app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/metrics":
        metrics: Iterable[bytes] = _METRICS(environ, start_response)
        return metrics
    if path == "/healthz":
        ok = health()
        start_response(
            "200 OK" if ok else "503 Service Unavailable",
            [("Content-Type", "text/plain; charset=utf-8")],
        )
        return [b"ok\n" if ok else b"the stream to ejabberd is down\n"]
    start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
    return [b"/metrics or /healthz\n"]


_METRICS = make_wsgi_app()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not worth a log line each."""


class MetricsServer:
    """``/metrics`` and ``/healthz`` on ``host:port``, in a daemon thread."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._server: WSGIServer | None = None

    async def start(self) -> None:
        """Listen, or log why not: a port taken must not stop the routing."""
        try:
            self._server = make_server(self.host, self.port, _app, handler_class=_QuietHandler)
        except OSError as exc:
            log.error("metrics.not_served", address=f"{self.host}:{self.port}", error=str(exc))
            return
        self.port = self._server.server_port  # the one the system chose, for port 0
        threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True).start()
        log.info("metrics.serving", address=f"http://{self.host}:{self.port}/metrics")

    async def stop(self) -> None:
        if self._server is not None:
            await asyncio.to_thread(self._server.shutdown)
            self._server.server_close()


async def watch_pending(archive: ArchiveStore) -> None:
    """Keep :data:`PENDING` up to date (every :data:`PENDING_INTERVAL_S`); runs
    until cancelled. Storage down: the gauge keeps its last value meanwhile."""
    while True:
        raise_if_cancelling()
        try:
            PENDING.set(await archive.count_pending())
        except Unavailable as exc:
            log.debug("metrics.pending_unavailable", error=str(exc))
        await asyncio.sleep(PENDING_INTERVAL_S)
