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
    """The component's XML stream, as the routers and features write to it.

    A stanza larger than ``max_stanza_size`` bytes is never written: ejabberd
    would close the stream, and every other stanza in flight with it. Such a
    stanza is a bug (every input is bounded upstream); it is logged and dropped.
    """

    def __init__(self, write: Callable[[str], None], max_stanza_size: int = 262144) -> None:
        self._write = write
        self._max_chars = max_stanza_size // 4  # a char is at most 4 bytes in UTF-8
        self._max_bytes = max_stanza_size

    def send(self, data: Sequence[str]) -> None:
        """Write stanzas in one socket write; raises NotConnected."""
        if not data:
            return
        if any(len(stanza) > self._max_chars for stanza in data):
            data = [stanza for stanza in data if self._fits(stanza)]
            if not data:
                return
        self._write("".join(data))

    def _fits(self, stanza: str) -> bool:
        size = len(stanza.encode())
        if size <= self._max_bytes:
            return True
        log.error("routing.stanza_too_large", size=size, start=stanza[:120])
        return False

    def send_or_drop(self, data: Sequence[str]) -> None:
        """Write stanzas nobody will retry (error replies, notices); while the
        stream is down they are dropped and logged."""
        try:
            self.send(data)
        except NotConnected:
            log.warning("routing.reply_dropped", reason="not connected", stanzas=len(data))
