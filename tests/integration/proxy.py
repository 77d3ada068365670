"""A loopback TCP proxy for outage tests: put it between the component and a server.

    proxy = await TcpProxy.start(5432)        # 127.0.0.1:<proxy.port> -> 127.0.0.1:5432
    proxy.cut()                               # reset every connection, refuse new ones
    await proxy.restore()                     # accept and forward again, same port
    await proxy.close()

"Down" is played without touching the real server (other tests keep using
it): ``cut()`` aborts both sides of every connection (the peer sees a reset)
and closes the listening socket, so new connections are refused as by a
stopped server. It is the idea of ``tests/conftest.py``'s
``TcpProxy``, with a synchronous ``cut()`` and a connection counter.
"""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.WriteTransport] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        #: Connections accepted and forwarded since the proxy was created.
        self.accepted = 0

    @classmethod
    async def start(cls, target_port: int, *, cut: bool = False) -> TcpProxy:
        """A proxy on a free loopback port; ``cut=True``: refusing from the start."""
        proxy = cls(target_port)
        await proxy.restore()
        if cut:
            proxy.cut()
        return proxy

    @property
    def is_cut(self) -> bool:
        return self._server is None

    async def restore(self) -> None:
        """Listen (again, on the same port once one was chosen) and forward."""
        if self._server is not None:
            return
        # reuse_address (the default on Unix) lets the port be bound again
        # right after cut(), while reset connections linger in TIME_WAIT.
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    def cut(self) -> None:
        """Reset every open connection and stop listening (connections refused)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for transport in list(self._transports):
            transport.abort()  # RST, not FIN: the server "vanished"
        self._transports.clear()

    async def close(self) -> None:
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        if self._server is None:  # cut while connecting upstream
            writer.transport.abort()
            up_writer.transport.abort()
            return
        self.accepted += 1
        self._transports |= {writer.transport, up_writer.transport}
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        # One side closed or failed: tear the other down too, like a real hop.
        dst.transport.abort()
        self._transports.discard(dst.transport)
