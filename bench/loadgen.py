"""A raw-socket XMPP load generator.

Each simulated user logs in normally (stream, SASL PLAIN, resource binding,
initial presence) over one plain TCP connection to ejabberd's c2s port; after
that, senders write pre-rendered stanzas in which only the sequence number and
the send timestamp change, and receivers scan what arrives with one regular
expression per read. No XML library and no stanza objects on either side, so
the generator costs little CPU next to the servers it measures.

A message body is ``b<run>:<seq>:<t_ns>:`` padded to ``BODY_BYTES``; its id is
``<run>-<seq>``. The receiver measures delivery latency from ``t_ns``; a sender
that asked for receipts measures commit latency from the receipt's id.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import re
import time

BODY_BYTES = 120
_BODY = re.compile(rb"<body>b(\d+):(\d+):(\d+):")
_RECEIPT = re.compile(rb"<received[^>]*?id=['\"](\d+)-(\d+)['\"]")
_ERROR = re.compile(rb"type=['\"]error['\"]")


class LoginError(Exception):
    pass


@dataclasses.dataclass
class Counters:
    """What one run of the generator observed."""

    received: dict[int, int] = dataclasses.field(default_factory=dict)  # seq -> latency ns
    receipts: dict[int, int] = dataclasses.field(default_factory=dict)
    errors: int = 0


class RawClient:
    """One logged-in XMPP account on a raw socket."""

    def __init__(self, jid: str, password: str, host: str = "127.0.0.1", port: int = 5222) -> None:
        self.jid = jid
        self.user, self.domain = jid.split("@", 1)
        self.password = password
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.full_jid = jid
        self._reading: asyncio.Task[None] | None = None

    async def login(self, resource: str = "bench", presence: bool = True) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        await self._open_stream()
        await self._read_until(b"</stream:features>")
        creds = base64.b64encode(f"\0{self.user}\0{self.password}".encode()).decode()
        self._send(
            f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{creds}</auth>"
        )
        answer = await self._read_until(b"success", b"failure")
        if b"failure" in answer:
            raise LoginError(f"{self.jid}: authentication failed")
        await self._open_stream()
        await self._read_until(b"</stream:features>")
        self._send(
            "<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
            f"<resource>{resource}</resource></bind></iq>"
        )
        bound = await self._read_until(b"</iq>")
        match = re.search(rb"<jid>([^<]+)</jid>", bound)
        if match is None:
            raise LoginError(f"{self.jid}: resource binding failed: {bound[:200]!r}")
        self.full_jid = match.group(1).decode()
        if presence:
            self._send("<presence/>")

    async def _open_stream(self) -> None:
        self._send(
            f"<?xml version='1.0'?><stream:stream to='{self.domain}' version='1.0' "
            "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
        )

    async def _read_until(self, *markers: bytes) -> bytes:
        assert self.reader is not None
        data = b""
        while not any(m in data for m in markers):
            chunk = await asyncio.wait_for(self.reader.read(65536), 10)
            if not chunk:
                raise LoginError(f"{self.jid}: connection closed during login: {data[-200:]!r}")
            data += chunk
        return data

    def _send(self, text: str) -> None:
        assert self.writer is not None
        self.writer.write(text.encode())

    def write(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)

    def start_reading(self, counters: Counters, run: int) -> None:
        """Scan everything received for bodies and receipts of run ``run``."""
        self._reading = asyncio.create_task(self._read_loop(counters, run))

    async def _read_loop(self, counters: Counters, run: int) -> None:
        assert self.reader is not None
        tail = b""
        while True:
            chunk = await self.reader.read(262144)
            if not chunk:
                return
            now = time.time_ns()
            data = tail + chunk
            # Keep everything from the last "<" for the next read: a body or a
            # receipt cut by the read boundary is then seen whole next time.
            cut = data.rfind(b"<")
            if cut < 0:
                cut = len(data)
            data, tail = data[:cut], data[cut:]
            for r, seq, sent in _BODY.findall(data):
                if int(r) == run:
                    counters.received[int(seq)] = now - int(sent)
            for r, seq in _RECEIPT.findall(data):
                if int(r) == run:
                    counters.receipts[int(seq)] = now
            if b"error" in data:
                counters.errors += len(_ERROR.findall(data))

    async def close(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
        if self.writer is not None:
            try:
                self.writer.write(b"</stream:stream>")
                await self.writer.drain()
            except ConnectionError:
                pass
            self.writer.close()


def render(to: str, run: int, seq: int, receipt: bool) -> bytes:
    """One chat message; the body is padded to BODY_BYTES."""
    stamp = time.time_ns()
    head = f"b{run}:{seq}:{stamp}:"
    body = head + "x" * max(0, BODY_BYTES - len(head))
    request = "<request xmlns='urn:xmpp:receipts'/>" if receipt else ""
    return (
        f"<message to='{to}' type='chat' id='{run}-{seq}'><body>{body}</body>{request}</message>"
    ).encode()
