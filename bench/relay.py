"""Path R of the benchmark: a raw relay component with exactly C's routings.

An external component (XEP-0114) that does nothing but what orgchat's
routing must do at the least for path C: each customer message to
``bench-cN@<domain>`` goes out to the agent ``bench-rN@<vhost>`` (from a
conversation address), and a XEP-0184 receipt goes back to the customer. No
archive, no Redis, no XML parser: regular expressions over the raw stream,
one write per read. What orgchat achieves next to it (``ratio_c_over_r``) is
how close orgchat comes to what ejabberd and one Python process allow on the
machine.

    python -m bench.relay --domain biz-bench.localhost --port 5349 --secret S --vhost localhost
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import re
import sys
from pathlib import Path

_STREAM_ID = re.compile(rb"<stream:stream\b[^>]*?\bid=['\"]([^'\"]+)['\"]")
_MESSAGE = re.compile(rb"<message\b([^>]*)>(.*?)</message>", re.S)
_ATTR = {
    name: re.compile(rb"\b" + name + rb"=['\"]([^'\"]*)['\"]") for name in (b"from", b"to", b"id")
}
_BODY = re.compile(rb"<body>(.*?)</body>", re.S)
_COMPANY = re.compile(rb"^bench-c(\d+)@")


async def relay(domain: str, port: int, secret: str, vhost: str, ready: Path | None) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"<stream:stream xmlns='jabber:component:accept' "
        f"xmlns:stream='http://etherx.jabber.org/streams' to='{domain}'>".encode()
    )
    data = b""
    while (found := _STREAM_ID.search(data)) is None:
        data += await reader.read(4096)
    digest = hashlib.sha1(found.group(1) + secret.encode()).hexdigest()
    writer.write(f"<handshake>{digest}</handshake>".encode())
    while b"<handshake/>" not in data and b"<handshake></handshake>" not in data:
        chunk = await reader.read(4096)
        if not chunk or b"<stream:error" in data:
            raise SystemExit(f"relay: handshake refused: {data[-300:]!r}")
        data += chunk
    if ready is not None:
        await asyncio.to_thread(ready.touch)
    tail = b""
    while chunk := await reader.read(262144):
        data = tail + chunk
        out: list[bytes] = []
        end = 0
        for match in _MESSAGE.finditer(data):
            end = match.end()
            out.extend(_route(match.group(1), match.group(2), domain.encode(), vhost.encode()))
        tail = data[end:]
        if out:
            writer.write(b"".join(out))


def _route(attrs: bytes, inner: bytes, domain: bytes, vhost: bytes) -> list[bytes]:
    """The agent's copy and the customer's receipt of one customer message."""
    values = {name: pattern.search(attrs) for name, pattern in _ATTR.items()}
    sender, to, mid = (m.group(1) if m else None for m in values.values())
    body = _BODY.search(inner)
    if sender is None or to is None or body is None:
        return []
    company = _COMPANY.match(to)
    if company is None:
        return []
    n = company.group(1)
    agent = b"bench-r" + n + b"@" + vhost
    conversation = b"bench-c" + n + b"+relay@" + domain
    forward = (
        b"<message from='" + conversation + b"' to='" + agent + b"' type='chat'><body>"
        + body.group(1) + b"</body></message>"
    )  # fmt: skip
    if mid is None:
        return [forward]
    receipt = (
        b"<message from='" + to + b"' to='" + sender + b"'><received xmlns='urn:xmpp:receipts' id='"
        + mid + b"'/></message>"
    )  # fmt: skip
    return [forward, receipt]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.relay", description=__doc__)
    parser.add_argument("--domain", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--vhost", default="localhost")
    parser.add_argument("--ready", type=Path, help="a file created once the stream is up")
    args = parser.parse_args(argv)
    try:
        asyncio.run(relay(args.domain, args.port, args.secret, args.vhost, args.ready))
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
