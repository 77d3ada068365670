"""Each component process's health for its supervisors: metrics (Prometheus) and
/healthz over HTTP, and systemd's notifications (readiness, watchdog)."""

from __future__ import annotations

import asyncio
import re
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.integration.clients import chat, child, is_message, new_id
from tests.integration.conftest import ComponentProcess, MakeCompany, register

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

RECEIPTS = "urn:xmpp:receipts"


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def sample(text: str, name: str) -> float:
    """One sample's value in Prometheus' text format (0 if absent)."""
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


async def scrape(component: ComponentProcess) -> str:
    status, text = await asyncio.to_thread(
        get, f"http://127.0.0.1:{component.metrics_port}/metrics"
    )
    assert status == 200
    return text


async def test_a_routed_message_shows_in_the_metrics(
    component: ComponentProcess, make_company: MakeCompany, clients: Any
) -> None:
    shop = await make_company(agents=1, name="Metered Shop")
    agent = await clients(shop.agents[0])
    customer = await clients(await register("metered"))
    before = await scrape(component)

    mid = new_id()
    customer.send_xml(chat(shop.jid, "Counted?", mid, f'<request xmlns="{RECEIPTS}"/>'))
    await agent.inbox.expect(is_message("Counted?"))
    await customer.inbox.expect(lambda el: child(el, "received", RECEIPTS) is not None)
    customer.send_xml(chat("no-such-company@" + shop.jid.split("@")[1], "Anyone?"))
    await customer.inbox.expect(lambda el: el.get("type") == "error")

    after = await scrape(component)
    for name, at_least in (
        ('orgchat_messages_total{kind="customer"}', 1),
        ("orgchat_receipts_total", 1),
        ("orgchat_commit_seconds_count", 1),
        ("orgchat_batch_size_count", 1),
        ('orgchat_errors_total{condition="item-not-found"}', 1),
    ):
        assert sample(after, name) - sample(before, name) >= at_least, name
    assert sample(after, "orgchat_stream_up") == 1
    assert await asyncio.to_thread(get, f"http://127.0.0.1:{component.metrics_port}/healthz") == (
        200,
        "ok\n",
    )


async def test_a_process_without_its_stream_is_not_healthy(tmp_path: Path) -> None:
    # Its component listener never answers: the process runs, but cannot route.
    lonely = ComponentProcess(tmp_path, "lonely", ORGCHAT_COMPONENT_PORT="1")
    await lonely.start(wait=False)
    try:
        url = f"http://127.0.0.1:{lonely.metrics_port}/healthz"
        for _ in range(100):
            try:
                answer = await asyncio.to_thread(get, url)
                break
            except OSError:  # not listening yet
                await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"no /healthz:\n{lonely.log_tail()}")
        assert answer == (503, "the stream to ejabberd is down\n")
        assert sample(await scrape(lonely), "orgchat_stream_up") == 0
    finally:
        await lonely.stop()


async def test_systemd_hears_ready_the_watchdog_and_stopping(tmp_path: Path) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "notify"))
    listener.setblocking(False)
    heard: list[str] = []

    async def until(field: str) -> None:
        loop = asyncio.get_running_loop()
        while field not in heard:
            heard.extend(
                (await asyncio.wait_for(loop.sock_recv(listener, 4096), 20)).decode().split("\n")
            )

    supervised = ComponentProcess(
        tmp_path, "supervised", NOTIFY_SOCKET=str(tmp_path / "notify"), WATCHDOG_USEC="400000"
    )
    try:
        await supervised.start(wait=False)
        await until("READY=1")
        assert supervised.ready_file.exists()  # ready means connected
        assert any(f.startswith("STATUS=connected to ejabberd") for f in heard), heard
        heard.clear()
        await until("WATCHDOG=1")
        heard.clear()
        await until("WATCHDOG=1")  # again, from the running event loop
        assert await supervised.stop() == 0
        await until("STOPPING=1")
    finally:
        await supervised.stop()
        listener.close()
