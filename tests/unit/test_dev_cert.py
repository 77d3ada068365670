"""scripts/dev_cert.py: the development certificate of docker-compose.yml's ejabberd,
run as the compose file runs it (a process), then used for a real TLS handshake."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "scripts" / "dev_cert.py"


def dev_cert(out: Path, *names: str) -> str:
    args = [arg for name in names for arg in ("--name", name)]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stderr


async def handshake(pem: Path, server_name: str) -> None:
    """A TLS server with the PEM (key and certificate in one file, as ejabberd
    reads it), and a client that trusts that certificate alone."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(pem)
    client_ctx = ssl.create_default_context(cafile=str(pem))

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"ok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ctx, server_hostname=server_name
        )
        assert await reader.read() == b"ok"
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


def test_clients_that_trust_it_connect_to_the_host_and_its_services(tmp_path: Path) -> None:
    pem = tmp_path / "certs" / "ejabberd.pem"
    assert "written" in dev_cert(pem)
    assert oct(pem.stat().st_mode & 0o777) == "0o644"
    for name in ("localhost", "upload.localhost"):
        asyncio.run(handshake(pem, name))
    with pytest.raises(ssl.SSLCertVerificationError):
        asyncio.run(handshake(pem, "example.org"))


def test_kept_across_restarts_and_written_again_for_new_names(tmp_path: Path) -> None:
    pem = tmp_path / "ejabberd.pem"
    dev_cert(pem)
    first = pem.read_bytes()
    assert "kept" in dev_cert(pem)
    assert pem.read_bytes() == first
    assert "written" in dev_cert(pem, "localhost", "chat.example.test")
    assert pem.read_bytes() != first
    asyncio.run(handshake(pem, "chat.example.test"))
