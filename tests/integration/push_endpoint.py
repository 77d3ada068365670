"""A push service stand-in for tests: real HTTP on 127.0.0.1, real cryptography.

:class:`PushEndpoint` listens on a free loopback port (asyncio streams,
HTTP/1.1, one request per connection), records every request and answers as
told: 201 Created by default, or any status with a ``Retry-After``, or never
(to test timeouts). It checks nothing by itself; the tests call
:func:`verify_vapid` (RFC 8292: the ES256 JWT against the ``k=`` key, and its
claims) and :func:`decrypt` (RFC 8291 over RFC 8188 ``aes128gcm``) on what it
recorded.

:func:`decrypt` is the user agent's side, written independently of
``component.features.notify.push``: it follows RFC 8291 section 3.4 literally, with
HMAC-SHA-256 as the HKDF steps, where the sender uses ``cryptography``'s HKDF.

:meth:`PushEndpoint.subscribe` (or :func:`browser_subscription`) makes a
subscription as a browser would: a P-256 key pair and a 16-byte
authentication secret, published as endpoint/p256dh/auth strings.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import hmac
import json
import re
import secrets
import time
from http import HTTPStatus
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from storage.models import PushSubscription

HOST = "127.0.0.1"


def b64d(text: str) -> bytes:
    """base64url, padding optional (strict alphabet)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise AssertionError(f"not unpadded base64url: {text!r}")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


# -- the browser's side ------------------------------------------------------


@dataclasses.dataclass
class BrowserSubscription:
    """What ``pushManager.subscribe`` makes, with the private half kept."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes

    @property
    def p256dh(self) -> str:
        return b64e(_point(self.private_key.public_key()))

    @property
    def auth(self) -> str:
        return b64e(self.auth_secret)

    def model(self, id: int = 1, address: str = "anna@localhost") -> PushSubscription:
        """As storage returns it."""
        return PushSubscription(
            id=id, address=address, endpoint=self.endpoint, p256dh=self.p256dh, auth=self.auth
        )

    def decrypt(self, body: bytes) -> bytes:
        return decrypt(body, self.private_key, self.auth_secret)


def browser_subscription(endpoint: str) -> BrowserSubscription:
    """A fresh subscription for ``endpoint``: P-256 key pair + 16-byte auth."""
    return BrowserSubscription(
        endpoint=endpoint,
        private_key=ec.generate_private_key(ec.SECP256R1()),
        auth_secret=secrets.token_bytes(16),
    )


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def decrypt(body: bytes, ua_private: ec.EllipticCurvePrivateKey, auth_secret: bytes) -> bytes:
    """Decrypt an ``aes128gcm`` push message body as a user agent does.

    RFC 8188 section 2.1 header: salt (16) | rs (uint32) | idlen (1) | keyid;
    RFC 8291 section 3.4: keyid is the sender's ephemeral public key, and
      PRK_key = HMAC(auth_secret, ecdh_secret)
      IKM = HMAC(PRK_key, "WebPush: info" || 0x00 || ua_public || as_public || 0x01)
      PRK = HMAC(salt, IKM)
      CEK = HMAC(PRK, "Content-Encoding: aes128gcm" || 0x00 || 0x01)[:16]
      NONCE = HMAC(PRK, "Content-Encoding: nonce" || 0x00 || 0x01)[:12]
    then one record (RFC 8291 section 4), whose padding delimiter must be 0x02.
    Raises (InvalidTag, AssertionError, ValueError) on anything wrong.
    """
    if len(body) < 21:
        raise AssertionError("body shorter than the aes128gcm header")
    salt, rs, idlen = body[:16], int.from_bytes(body[16:20], "big"), body[20]
    if idlen != 65:
        raise AssertionError(f"keyid of {idlen} bytes, RFC 8291 wants the 65-byte point")
    as_public = body[21 : 21 + idlen]
    record = body[21 + idlen :]
    if rs < 18 or len(record) > rs:
        raise AssertionError(f"not a single record: {len(record)} bytes, rs {rs}")
    as_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), as_public)
    ecdh_secret = ua_private.exchange(ec.ECDH(), as_key)
    ua_public = _point(ua_private.public_key())
    prk_key = _hmac(auth_secret, ecdh_secret)
    ikm = _hmac(prk_key, b"WebPush: info\x00" + ua_public + as_public + b"\x01")
    prk = _hmac(salt, ikm)
    cek = _hmac(prk, b"Content-Encoding: aes128gcm\x00\x01")[:16]
    nonce = _hmac(prk, b"Content-Encoding: nonce\x00\x01")[:12]
    padded = AESGCM(cek).decrypt(nonce, record, None)
    unpadded = padded.rstrip(b"\x00")
    if not unpadded or unpadded[-1] != 2:
        raise AssertionError("the last record must end with the 0x02 delimiter")
    return unpadded[:-1]


# -- the push service's side -----------------------------------------------------


@dataclasses.dataclass(frozen=True)
class VapidToken:
    header: dict[str, Any]
    claims: dict[str, Any]
    key: str  #: the k= parameter: base64url of the uncompressed point


def origin(endpoint: str) -> str:
    """scheme://host:port of an http(s) URL that names its port."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.hostname}:{parts.port}"


def verify_vapid(
    authorization: str,
    endpoint: str,
    subject: str,
    now: float | None = None,
) -> VapidToken:
    """Check an RFC 8292 ``Authorization: vapid t=..., k=...`` header.

    The JWT must be ES256, signed by the key in ``k``, with ``aud`` the
    endpoint's origin, ``exp`` in the future and at most 24 hours away, and
    ``sub`` the given subject. AssertionError (or InvalidSignature) otherwise.
    """
    now = time.time() if now is None else now
    match = re.fullmatch(r"vapid t=([A-Za-z0-9_.-]+), ?k=([A-Za-z0-9_-]+)", authorization)
    if not match:
        raise AssertionError(f"not a vapid Authorization: {authorization!r}")
    token, k = match.groups()
    parts = token.split(".")
    if len(parts) != 3:
        raise AssertionError("a JWS compact serialization has three parts")
    header = json.loads(b64d(parts[0]))
    claims = json.loads(b64d(parts[1]))
    if header.get("alg") != "ES256" or header.get("typ", "JWT") != "JWT":
        raise AssertionError(f"JWT header {header}")
    point = b64d(k)
    if len(point) != 65 or point[0] != 4:
        raise AssertionError("k is not an uncompressed P-256 point")
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    signature = b64d(parts[2])
    if len(signature) != 64:
        raise AssertionError(f"ES256 signature of {len(signature)} bytes, not R||S (64)")
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    public.verify(der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256()))
    if claims.get("aud") != origin(endpoint):
        raise AssertionError(f"aud {claims.get('aud')!r}, endpoint origin {origin(endpoint)!r}")
    exp = claims.get("exp")
    if not isinstance(exp, int) or not now < exp <= now + 24 * 3600:
        raise AssertionError(f"exp {exp!r} not within 24 hours of {now:.0f}")
    if claims.get("sub") != subject:
        raise AssertionError(f"sub {claims.get('sub')!r}, expected {subject!r}")
    return VapidToken(header=header, claims=claims, key=k)


@dataclasses.dataclass(frozen=True)
class Received:
    """One request as the push service got it."""

    method: str
    path: str
    headers: dict[str, str]  #: names in lower case
    body: bytes


class PushEndpoint:
    """An RFC 8030 push service on 127.0.0.1 that records and answers as told.

    ``async with PushEndpoint() as push:`` then ``push.subscribe()`` for a
    subscription whose endpoint is here; ``push.answer(410)`` changes the
    status of the next answers; ``push.hang = True`` reads requests and never
    answers.
    """

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.status = 201
        self.retry_after: str | None = None
        self.response_body = b""
        self.hang = False
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def url(self, path: str = "/") -> str:
        return f"http://{HOST}:{self.port}{path}"

    def subscribe(self) -> BrowserSubscription:
        return browser_subscription(self.url(f"/wpush/v2/{secrets.token_urlsafe(24)}"))

    def answer(self, status: int, retry_after: str | None = None, body: bytes = b"") -> None:
        self.status, self.retry_after, self.response_body = status, retry_after, body

    async def start(self) -> PushEndpoint:
        self._server = await asyncio.start_server(self._handle, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def __aenter__(self) -> PushEndpoint:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _version = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append(Received(method, path, headers, body))
        if self.hang:
            await asyncio.Event().wait()
        reason = HTTPStatus(self.status).phrase
        out = [f"HTTP/1.1 {self.status} {reason}"]
        if self.status == 201:
            out.append(f"Location: {self.url('/message/' + secrets.token_urlsafe(8))}")
        if self.retry_after is not None:
            out.append(f"Retry-After: {self.retry_after}")
        out += [f"Content-Length: {len(self.response_body)}", "Connection: close", "", ""]
        writer.write("\r\n".join(out).encode("latin-1") + self.response_body)
        await writer.drain()
