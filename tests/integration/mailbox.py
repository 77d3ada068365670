"""A real SMTP server on loopback for the cascade's tests (aiosmtpd, in the test loop).

The session's component sends its email here. Tests read what arrived and can
make the server answer 451 (temporary), 550 (permanent), or go down and come
back on the same port, as a real relay would.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, EmailMessage]] = []
        self.mode = "accept"  #: accept | tempfail | permfail
        self.port = 0
        self._server: asyncio.Server | None = None
        self._arrived = asyncio.Event()

    async def start(self, port: int = 0) -> Mailbox:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="mailbox.test"), "127.0.0.1", port or self.port
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def running(self) -> bool:
        return self._server is not None

    async def stop(self) -> None:
        """Close the listening socket: connections are refused until start()."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.mode == "tempfail":
            return "451 4.3.0 Try again later"
        if self.mode == "permfail":
            return "550 5.1.1 No such mailbox"
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append((envelope, message))
        self._arrived.set()
        return "250 2.0.0 Queued"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for env, m in self.messages if address in env.rcpt_tos]

    async def expect(self, address: str, count: int = 1, wait: float = 15.0) -> list[EmailMessage]:
        """Wait until ``count`` emails to ``address`` arrived; returns them all."""
        deadline = asyncio.get_running_loop().time() + wait
        while len(self.to(address)) < count:
            self._arrived.clear()
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(
                    f"{len(self.to(address))} email(s) to {address} after {wait}s, expected {count}"
                )
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                continue
        return self.to(address)

    async def nothing_to(self, address: str, wait: float) -> None:
        """No new email to ``address`` arrives within ``wait`` seconds."""
        before = len(self.to(address))
        await asyncio.sleep(wait)
        new = self.to(address)[before:]
        assert not new, [m["Subject"] for m in new]


def text_of(message: EmailMessage) -> str:
    part: Any = message.get_body(preferencelist=("plain",))
    assert part is not None, message
    return str(part.get_content())
