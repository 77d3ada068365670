"""systemd's notification protocol, against a real datagram socket."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from component.systemd import Notifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(2)
    yield sock
    sock.close()


def test_fields_reach_the_socket(listener: socket.socket) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": listener.getsockname()})
    notifier.notify("READY=1", "STATUS=connected")
    assert listener.recv(1024) == b"READY=1\nSTATUS=connected"


def test_outside_systemd_nothing_is_sent_and_nothing_fails() -> None:
    notifier = Notifier({})
    notifier.notify("READY=1")
    assert notifier.watchdog_interval is None
    # A socket that went away is logged, never raised.
    Notifier({"NOTIFY_SOCKET": "/nonexistent/notify"}).notify("READY=1")


def test_the_watchdog_pings_at_half_the_interval_for_this_process_only(
    listener: socket.socket,
) -> None:
    env = {"NOTIFY_SOCKET": listener.getsockname(), "WATCHDOG_USEC": "200000"}
    assert Notifier(env).watchdog_interval == 0.1
    assert Notifier({**env, "WATCHDOG_PID": str(os.getpid())}).watchdog_interval == 0.1
    assert Notifier({**env, "WATCHDOG_PID": "1"}).watchdog_interval is None

    async def ping_twice() -> None:
        task = asyncio.create_task(Notifier(env).watchdog())
        await asyncio.sleep(0.15)
        task.cancel()

    asyncio.run(ping_twice())
    assert [listener.recv(64), listener.recv(64)] == [b"WATCHDOG=1", b"WATCHDOG=1"]
