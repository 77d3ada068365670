"""docs/protocol.md is executable: its XML examples are the routing layer's fixtures.

Blocks marked ``<!-- in -->`` are fed to the router in document order; the
``<!-- out -->`` blocks that follow must be exactly what it writes (compared in
canonical form, so attribute order and indentation do not matter). Every other
block must be well-formed.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from component.directory import Directory
from component.routing import router as router_module
from component.routing.outbox import Outbox
from tests.unit.fakes import (
    FakeConversations,
    FakeDirectoryStore,
    FakePresence,
    message_router,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
NS = "jabber:component:accept"
BLOCK = re.compile(r"```xml\n<!-- (in|out|example) -->\n(.*?)```", re.S)


def blocks() -> list[tuple[str, str]]:
    found = BLOCK.findall(DOC.read_text())
    assert found, "no fixtures found in docs/protocol.md"
    return found


def parse_stanzas(text: str) -> list[ET.Element]:
    return list(ET.fromstring(f'<stream xmlns="{NS}">{text}</stream>'))


def canonical(el: ET.Element) -> str:
    return ET.canonicalize(ET.tostring(el, encoding="unicode"), strip_text=True)


@pytest.mark.asyncio
async def test_examples_match_what_routing_does(monkeypatch: pytest.MonkeyPatch) -> None:
    counter = itertools.count(1)
    monkeypatch.setattr(
        router_module,
        "new_id",
        lambda: hashlib.sha1(f"orgchat-doc-{next(counter)}".encode()).hexdigest()[:24],
    )
    store = FakeDirectoryStore()
    store.add("pizza-napoli", "Pizza Napoli", ["mario@localhost", "luigi@localhost"])
    directory = Directory(store)
    await directory.reload(None)
    presence = FakePresence()
    await presence.update("mario@localhost", "desk", "available")
    written: list[str] = []
    router = message_router(
        directory,
        Outbox(written.append),
        conversations=FakeConversations(tokens=["k3x7f2q7mz"]),
        presence=presence,
    )
    task = asyncio.create_task(router.run())
    try:
        produced: list[ET.Element] = []
        for n, (kind, text) in enumerate(blocks(), 1):
            stanzas = parse_stanzas(text)
            if kind == "in":
                assert not produced, f"block {n - 1}: output not documented: {produced}"
                for stanza in stanzas:
                    router.submit(stanza)
                await asyncio.sleep(0)
                await router.drain()
                produced = parse_stanzas("".join(written))
                written.clear()
            elif kind == "out":
                expected = [canonical(s) for s in stanzas]
                actual = [canonical(s) for s in produced[: len(stanzas)]]
                assert actual == expected, f"block {n} of docs/protocol.md"
                produced = produced[len(stanzas) :]
        assert not produced, f"output of the last example is not documented: {produced}"
    finally:
        task.cancel()


def test_every_example_is_well_formed() -> None:
    for kind, text in blocks():
        assert parse_stanzas(text), kind
