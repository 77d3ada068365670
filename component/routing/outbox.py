"""Where rendered stanzas go, and the ids they carry."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence

from component.errors import NotConnected
from component.logs import get_logger

log = get_logger(__name__)


# Seeded from the OS once: 96 random bits per id, unique across processes,
# without a system call per id (two ids per routed message).
_random = random.Random(os.urandom(32))


def new_id() -> str:
    """A random stanza id, unique across processes."""
    return f"{_random.getrandbits(96):024x}"


class Outbox:
    """The component's XML stream, as the routers and features write to it."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write

    def send(self, data: Sequence[str]) -> None:
        """Write stanzas in one socket write; raises NotConnected."""
        if data:
            self._write("".join(data))

    def send_or_drop(self, data: Sequence[str]) -> None:
        """Write stanzas nobody will retry (error replies, notices); while the
        stream is down they are dropped and logged."""
        try:
            self.send(data)
        except NotConnected:
            log.warning("routing.reply_dropped", reason="not connected", stanzas=len(data))
